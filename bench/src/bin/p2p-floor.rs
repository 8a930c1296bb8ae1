//! The floor for `paircode send`: the same bytes over a bare libp2p 0.55 stream — TCP +
//! Noise + Yamux (libp2p's own, default configuration: paircode's bounded window would
//! only slow the floor) and `libp2p-stream`, with no application logic: no offer, no hashing, no disk writes on the receiver. `send-bench`
//! runs both ends, on loopback or on two namespace hosts.
//!
//! ```sh
//! p2p-floor receive /ip4/127.0.0.1/tcp/0   # prints its address, receives one stream, exits
//! p2p-floor send ADDRESS FILE              # sends FILE, waits for the receiver's 8-byte count
//! ```
//!
//! The receiver reads the stream to its end into one 256 KiB buffer (paircode's chunk size)
//! and answers with the number of bytes as 8 bytes, so the sender's exit means delivered.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, Multiaddr, StreamProtocol, Swarm};
use tokio::io::AsyncReadExt as _;

const PROTOCOL: StreamProtocol = StreamProtocol::new("/paircode-bench/floor/1");
const CHUNK: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // As the daemons run (`paircode-daemon`): one thread, so that the floor is the same
    // transport on the same runtime, not a slower one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["receive", addr] => runtime.block_on(receive(addr)),
        ["send", addr, file] => runtime.block_on(send(addr, file)),
        _ => Err("usage: p2p-floor receive LISTEN-ADDR | send ADDR FILE".into()),
    };
    if let Err(e) = result {
        eprintln!("p2p-floor: {e}");
        std::process::exit(1);
    }
}

fn swarm() -> Result<Swarm<libp2p_stream::Behaviour>, String> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            paircode_net::tcp_config(),
            noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| e.to_string())?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build())
}

async fn receive(listen: &str) -> Result<(), String> {
    let mut swarm = swarm()?;
    let mut incoming = swarm
        .behaviour()
        .new_control()
        .accept(PROTOCOL)
        .map_err(|e| e.to_string())?;
    let addr: Multiaddr = listen.parse().map_err(|e| format!("{listen}: {e}"))?;
    swarm.listen_on(addr).map_err(|e| e.to_string())?;
    let peer = *swarm.local_peer_id();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            println!("{address}/p2p/{peer}");
            break;
        }
    }
    // The count must reach the sender before this process exits: it is flushed by the
    // connection's task, so the receiver waits for the sender to hang up.
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut closed_tx = Some(closed_tx);
        loop {
            if let SwarmEvent::ConnectionClosed { .. } = swarm.select_next_some().await {
                if let Some(tx) = closed_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    let (_, mut stream) = incoming.next().await.ok_or("no stream")?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    stream
        .write_all(&total.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.close().await.map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(30), closed).await;
    driver.abort();
    Ok(())
}

async fn send(addr: &str, file: &str) -> Result<(), String> {
    let mut swarm = swarm()?;
    let mut control = swarm.behaviour().new_control();
    let addr: Multiaddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
        return Err(format!("{addr} does not end in /p2p/PEER"));
    };
    swarm.dial(addr).map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    let mut stream = control
        .open_stream(peer, PROTOCOL)
        .await
        .map_err(|e| e.to_string())?;
    let mut file = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("{file}: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        stream
            .write_all(&buf[..n])
            .await
            .map_err(|e| e.to_string())?;
        sent += n as u64;
    }
    stream.close().await.map_err(|e| e.to_string())?;
    let mut count = [0u8; 8];
    stream
        .read_exact(&mut count)
        .await
        .map_err(|e| e.to_string())?;
    driver.abort();
    match u64::from_be_bytes(count) == sent {
        true => Ok(()),
        false => Err(format!(
            "sent {sent} bytes, the receiver counted {}",
            u64::from_be_bytes(count)
        )),
    }
}
