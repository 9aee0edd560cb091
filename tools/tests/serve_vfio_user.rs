//! `nicqual serve-vfio-user` as a program: what it refuses at the command line, and one
//! client session over its socket (negotiation, device description, a register read, a
//! hostile message), after which the server exits, removes its socket and closes its pcap.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nicqual() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nicqual"))
}

#[test]
fn refuses_devices_and_faults_that_cannot_apply() {
    for (args, why) in [
        (vec!["--device", "model:bnx2x"], "serves model:i82574l"),
        (vec!["--fault", "lose-vector:9"], "vector 9 does not exist"),
        (vec!["--fault", "hostile-completion:3"], "fault plan for model:i82574l"),
    ] {
        let out =
            nicqual().args(["serve-vfio-user", "--socket", "/nonexistent/dir/s.sock"]).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// One message: header (id, command, size, flags 0, error 0) and payload.
fn msg(id: u16, cmd: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&cmd.to_le_bytes());
    m.extend_from_slice(&(16 + payload.len() as u32).to_le_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(payload);
    m
}

/// (flags, error, payload) of the next reply.
fn reply(s: &mut UnixStream) -> (u32, u32, Vec<u8>) {
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    let mut p = vec![0u8; word(4) as usize - 16];
    s.read_exact(&mut p).unwrap();
    (word(8), word(12), p)
}

#[test]
fn one_session_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vfu.sock");
    let mut server = nicqual()
        .args(["serve-vfio-user", "--socket"])
        .arg(&sock)
        .args(["--fault", "lose-vector:1", "--pcap"])
        .arg(dir.path().join("tx.pcap"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut s = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if t0.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("server socket never came: {e}"),
        }
    };
    s.write_all(&msg(1, 1, b"\0\0\0\0{\"capabilities\":{}}\0")).unwrap();
    let (flags, _, p) = reply(&mut s);
    assert_eq!(flags, 1, "a reply, no error");
    assert!(String::from_utf8_lossy(&p).contains("max_msg_fds"));
    // DEVICE_GET_INFO: PCI, resettable, 9 regions, 5 IRQ indices.
    s.write_all(&msg(2, 4, &[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap();
    let (_, _, p) = reply(&mut s);
    assert_eq!(p, [16, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0]);
    // REGION_READ of config dword 0: the 82574L's IDs.
    let mut rd = 0u64.to_le_bytes().to_vec();
    rd.extend_from_slice(&7u32.to_le_bytes());
    rd.extend_from_slice(&4u32.to_le_bytes());
    s.write_all(&msg(3, 9, &rd)).unwrap();
    let (_, _, p) = reply(&mut s);
    assert_eq!(p[16..], 0x10D3_8086u32.to_le_bytes());
    // Past the end of config space: an error reply with EINVAL, and the server carries on.
    let mut bad = 0x100u64.to_le_bytes().to_vec();
    bad.extend_from_slice(&7u32.to_le_bytes());
    bad.extend_from_slice(&4u32.to_le_bytes());
    s.write_all(&msg(4, 9, &bad)).unwrap();
    assert_eq!(reply(&mut s), (0x21, 22, vec![]));
    s.write_all(&msg(5, 9, &rd)).unwrap();
    assert_eq!(reply(&mut s).0, 1);
    drop(s);
    let st = server.wait().unwrap();
    let mut err = String::new();
    server.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "{err}");
    assert!(!Path::new(&sock).exists(), "socket removed on exit");
    // Nothing was transmitted: the capture is a valid, empty pcap file.
    assert!(err.contains("tx.pcap: 0 frames"), "{err}");
    let pcap = std::fs::read(dir.path().join("tx.pcap")).unwrap();
    assert_eq!(pcap.len(), 24, "pcap header only");
}
