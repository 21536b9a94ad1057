//! The stream's HTTP listener on loopback, in-process: listeners get a byte-exact Ogg stream however
//! slowly they read, `HEAD` and the listener limit are answered by hand, and the page's routes still
//! work on the same port (each answer closing its connection). The encoder plays silence while no tick comes,
//! so no jam server is needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tutti_stream::{ogg, Stream, StreamFeed, StreamOptions};

fn start(max_listeners: u32) -> (Stream, StreamFeed) {
    let options = StreamOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        bitrate: 64_000,
        show_names: true,
        server_name: "serving test".into(),
        privacy_html: "<p>policy</p>".into(),
        max_listeners,
        stall: Duration::from_secs(3),
        pages_per_write: 3,
        icecast: None,
    };
    Stream::start(options).expect("the stream starts")
}

fn request(addr: SocketAddr, text: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(text.as_bytes()).unwrap();
    tcp
}

/// Reads until the end of the response head; returns it and whatever body bytes came with it.
fn head(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = bytes.split_off(end + 4);
            return (String::from_utf8(bytes).unwrap(), body);
        }
        let n = tcp.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the end of the head: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Ogg pages: (sequence number, granule position); every CRC checked, every byte accounted for
/// but a last incomplete page.
fn pages(mut bytes: &[u8]) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    while bytes.len() >= 27 {
        assert_eq!(&bytes[..4], b"OggS", "a page starts where the last one ended");
        let segments = bytes[26] as usize;
        if bytes.len() < 27 + segments {
            break;
        }
        let length = 27 + segments + bytes[27..27 + segments].iter().map(|&l| l as usize).sum::<usize>();
        if bytes.len() < length {
            break;
        }
        let mut page = bytes[..length].to_vec();
        let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].fill(0);
        assert_eq!(ogg::crc32(&page), crc, "page {} has its CRC", found.len());
        let granule = u64::from_le_bytes(page[6..14].try_into().unwrap());
        found.push((u32::from_le_bytes(page[18..22].try_into().unwrap()), granule));
        bytes = &bytes[length..];
    }
    found
}

fn listeners(addr: SocketAddr) -> u64 {
    let mut tcp = request(addr, "GET /status.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["listeners"].as_u64().unwrap()
}

#[test]
fn a_slow_listener_gets_every_page_once_in_order_and_a_fast_one_the_same() {
    let (stream, _feed) = start(10);
    let addr = stream.local_addr();
    let get = "GET /stream.opus HTTP/1.1\r\nHost: x\r\n\r\n";
    let (mut slow, mut fast) = (request(addr, get), request(addr, get));
    let (slow_head, mut slow_bytes) = head(&mut slow);
    let (fast_head, mut fast_bytes) = head(&mut fast);
    for h in [&slow_head, &fast_head] {
        assert!(h.starts_with("HTTP/1.1 200 OK\r\n"), "{h}");
        assert!(h.contains("Content-Type: audio/ogg") && h.contains("Cache-Control: no-store"), "{h}");
    }
    let until = Instant::now() + Duration::from_secs(2);
    let mut chunk = [0u8; 97]; // never a page's size
    while Instant::now() < until {
        let n = slow.read(&mut chunk).unwrap();
        slow_bytes.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_millis(3));
    }
    // The fast one reads what it was sent meanwhile (the encoder writes every 60 ms).
    fast.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut big = [0u8; 65536];
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match fast.read(&mut big) {
            Ok(0) => panic!("the fast listener was closed"),
            Ok(n) => fast_bytes.extend_from_slice(&big[..n]),
            Err(_) => {}
        }
    }
    for (who, bytes) in [("slow", &slow_bytes), ("fast", &fast_bytes)] {
        let found = pages(bytes);
        assert!(found.len() > 2 + 50, "{who}: about 2 s of 20 ms pages, got {}", found.len());
        assert_eq!((found[0].0, found[1].0), (0, 1), "{who}: the header pages first");
        let audio = &found[2..];
        for pair in audio.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1, "{who}: no page lost or repeated");
            assert_eq!(pair[1].1, pair[0].1 + 960, "{who}: 20 ms per page");
        }
    }
    assert_eq!(listeners(addr), 2);
    drop((slow, fast));
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        listeners(addr) == 0
    });
    assert!(gone, "listeners that left are uncounted within a few writes");
}

#[test]
fn head_the_listener_limit_and_the_page_share_the_port() {
    let (stream, _feed) = start(2);
    let addr = stream.local_addr();
    let mut probe = request(addr, "HEAD /stream.opus?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut text = Vec::new();
    probe.read_to_end(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"), "a head and no body: {text:?}");

    let get = "GET /stream.opus HTTP/1.0\r\n\r\n";
    let (mut one, mut two) = (request(addr, get), request(addr, get));
    assert!(head(&mut one).0.starts_with("HTTP/1.1 200"));
    assert!(head(&mut two).0.starts_with("HTTP/1.1 200"));
    let mut three = request(addr, get);
    let mut refused = String::new();
    three.read_to_string(&mut refused).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.ends_with("the stream has as many listeners as it can serve\n"), "{refused}");
    assert_eq!(listeners(addr), 2);

    // A site answer closes its connection (even one asked to stay open), so the browser asks for
    // the stream on a new connection, where it is recognised.
    let mut site = request(addr, "GET /status.json HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    let mut answer = String::new();
    site.read_to_string(&mut answer).unwrap();
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains("\"listeners\":2"), "{answer}");
    let mut page = request(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = String::new();
    page.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.contains("serving test"), "{answer}");

    drop(one);
    let admitted = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let mut again = request(addr, get);
        head(&mut again).0.starts_with("HTTP/1.1 200")
    });
    assert!(admitted, "a place that was left is given to the next listener");
}
