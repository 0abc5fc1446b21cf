#[derive(serde::Serialize, serde::Deserialize, procession::Message)]
#[message(title = "x")]
struct Wrong;

fn main() {}
