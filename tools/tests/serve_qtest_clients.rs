//! `nicqual serve-qtest` against clients nobody here wrote: a raw socket script that steps
//! the clock to the end of time and arms timers, clients one after another, and options
//! that would overwrite a file or take unbounded memory.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve-qtest")
}

fn connect(sock: &std::path::Path) -> UnixStream {
    let t0 = Instant::now();
    loop {
        match UnixStream::connect(sock) {
            Ok(s) => return s,
            Err(e) if t0.elapsed() > Duration::from_secs(20) => panic!("connect {}: {e}", sock.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Send each line, return each reply line.
fn script(s: &UnixStream, lines: &[String]) -> Vec<String> {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    lines
        .iter()
        .map(|l| {
            w.write_all(format!("{l}\n").as_bytes()).unwrap();
            let mut reply = String::new();
            r.read_line(&mut reply).unwrap();
            reply.trim_end().to_string()
        })
        .collect()
}

fn wait_exit(mut c: Child) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code();
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = c.kill();
            let _ = c.wait();
            panic!("serve-qtest did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_end_of_time_then_timer_writes_and_a_second_client() {
    let dir = std::env::temp_dir().join(format!("nicqual-sq-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("q.sock");
    let child = start(&["serve-qtest", "--socket", sock.to_str().unwrap(), "--clients", "2", "--ram-mib", "4"]);
    let first = connect(&sock);
    let mut lines: Vec<String> =
        ["outl 0xcf8 0x80002010", "outl 0xcfc 0xe0000000", "outl 0xcf8 0x80002004", "outw 0xcfc 0x6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    lines.push("clock_step 18446744073709551615".into());
    // CTRL (reset + SLU: link timer), ITR/EITR0, IMS+ICS (throttled sends), RDTR/RADV/TIDV/TADV.
    for (reg, val) in [
        (0x0u32, 0x0400_0040u32),
        (0xC4, 0xFFFF),
        (0xE8, 0xFFFF),
        (0xD0, 0x01F0_0000),
        (0xC8, 0x01F0_0000),
        (0x2820, 0xFFFF),
        (0x282C, 0xFFFF),
        (0x3820, 0xFFFF),
        (0x382C, 0xFFFF),
    ] {
        lines.push(format!("writel {:#x} {val:#x}", 0xE000_0000u32 + reg));
    }
    lines.push("clock_step".into());
    let replies = script(&first, &lines);
    assert_eq!(replies[4], "OK 18446744073709551615");
    assert!(replies[5..14].iter().all(|r| r == "OK"), "{replies:?}");
    assert_eq!(replies[14], "OK 18446744073709551615");
    drop(first);
    // The second client finds the same machine, still serving.
    let second = connect(&sock);
    let r = script(&second, &["clock_step 1".into(), "readl 0xe0000008".into(), "clock_set 5".into()]);
    assert_eq!(r[0], "OK 18446744073709551615");
    assert!(r[1].starts_with("OK 0x"), "{r:?}");
    assert_eq!(r[2], "OK 18446744073709551615", "time never goes back");
    drop(second);
    assert_eq!(wait_exit(child), Some(0), "exits after its two clients");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn options_that_would_overwrite_a_file_or_take_unbounded_memory_are_refused() {
    let dir = std::env::temp_dir().join(format!("nicqual-sq-opts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let precious = dir.join("precious");
    std::fs::write(&precious, b"keep me").unwrap();
    let sock = dir.join("q.sock");
    let s = sock.to_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["serve-qtest", "--socket", s, "--mem-path", precious.to_str().unwrap(), "--ram-mib", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--reuse-mem-path"));
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me", "the file is untouched");
    for mib in ["0", "1000000000", "18446744073709551615"] {
        let o = Command::new(env!("CARGO_BIN_EXE_nicqual"))
            .args(["serve-qtest", "--socket", s, "--ram-mib", mib])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "--ram-mib {mib}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
