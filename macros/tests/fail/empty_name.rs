#[derive(serde::Serialize, serde::Deserialize, procession::Message)]
#[message(name = "")]
struct Empty;

fn main() {}
