//! `spawn_async` futures run on procession's workers and can use tokio sockets: tokio is only
//! the I/O reactor.

use procession::{spawn_async, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn async_task_can_open_and_use_sockets() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let _entered = runtime.enter();
    let echoed = spawn_async(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            socket.read_exact(&mut buf).await.unwrap();
            socket.write_all(&buf).await.unwrap();
        };
        let client = async move {
            let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
            socket.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            socket.read_exact(&mut buf).await.unwrap();
            buf
        };
        let ((), reply) = futures::join!(server, client);
        reply
    });
    assert_eq!(&runtime.block_on(echoed).unwrap(), b"hello");
}
