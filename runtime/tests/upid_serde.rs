//! A Upid travels inside messages: serde round trips (incarnation included), and malformed text
//! is an error.

use procession::Upid;

#[test]
fn a_upid_round_trips_through_serde_as_its_text() {
    let texts = [
        "master@10.0.0.1:5050",
        "agent(7)@[::1]:4000",
        "x@0.0.0.0:0",
        "worker(3)@10.0.0.1:5050#9f3c",
    ];
    for text in texts {
        let upid: Upid = text.parse().unwrap();
        let json = serde_json::to_string(&upid).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        let back = serde_json::from_str::<Upid>(&json).unwrap();
        assert_eq!((&back, back.incarnation()), (&upid, upid.incarnation()));
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&upid, config).unwrap();
        let (back, _): (Upid, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!((&back, back.incarnation()), (&upid, upid.incarnation()));
    }
}

#[test]
fn malformed_text_is_a_decoding_error() {
    for bad in ["\"no-at-sign\"", "\"a@not-an-address\"", "\"\"", "42"] {
        assert!(serde_json::from_str::<Upid>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_v6_upid_with_a_flow_label_equals_itself_read_back() {
    let address = std::net::SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 4000, 7, 0);
    let upid = Upid::new("agent", address.into());
    let back: Upid = upid.to_string().parse().unwrap();
    assert_eq!(back, upid);
}
