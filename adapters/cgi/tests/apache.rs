//! The real process boundary: Apache (Debian's `apache2`, installed with
//! `apt-get install -y apache2` when `/usr/sbin/apache2` is missing) runs
//! the `cgi_echo` example as a CGI program through mod_cgi and mod_alias's
//! `ScriptAlias`, and a raw HTTP client on 127.0.0.1 checks the echo.
//!
//! The example binary is the one cargo builds next to this test
//! (`target/<profile>/examples/cgi_echo`, found from this test's own path;
//! `cargo test` builds examples). If it is missing, the test builds it with
//! `cargo build -p serverbridge-cgi --example cgi_echo`. Apache runs in the
//! foreground from a config in a temporary directory (its own ServerRoot,
//! PidFile, ErrorLog, port) and is killed at the end, on failure too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

fn ensure_apache() {
    if Path::new(APACHE).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "apache2"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        assert!(install(), "could not install apache2 with apt-get");
    }
}

/// `target/<profile>/examples/cgi_echo`, built if missing.
fn cgi_echo() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/apache-HASH → target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let binary = profile_dir.join("examples").join("cgi_echo");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "serverbridge-cgi", "--example", "cgi_echo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the cgi_echo example failed");
    }
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}

/// Apache in the foreground; killed when dropped.
struct Apache {
    child: Child,
    dir: PathBuf,
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM lets Apache stop its children; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Apache {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_apache(binary: &Path) -> (Apache, u16) {
    let dir = std::env::temp_dir().join(format!("serverbridge-apache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::create_dir_all(dir.join("htdocs")).unwrap();
    std::fs::copy(binary, dir.join("cgi-bin").join("cgi_echo")).unwrap();
    let port = free_port();
    let d = dir.display();
    // Run as root, Apache's children must switch to an unprivileged user.
    let user = if std::env::var("USER").as_deref() == Ok("root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let config = format!(
        "ServerRoot \"{d}\"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile \"{d}/apache.pid\"
ErrorLog \"{d}/error.log\"
LogLevel warn
DefaultRuntimeDir \"{d}\"
Mutex file:{d} default
{user}LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule alias_module {MODULES}/mod_alias.so
LoadModule cgi_module {MODULES}/mod_cgi.so
StartServers 1
MinSpareServers 1
MaxSpareServers 2
DocumentRoot \"{d}/htdocs\"
ScriptAlias /cgi-bin/ \"{d}/cgi-bin/\"
<Directory \"{d}/cgi-bin\">
    Require all granted
</Directory>
"
    );
    let conf = dir.join("apache.conf");
    std::fs::write(&conf, config).unwrap();
    // Its own process group: Apache signals its whole group when it stops,
    // which must not include this test.
    let child = Command::new(APACHE)
        .process_group(0)
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let apache = Apache { child, dir };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (apache, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Apache did not listen within 10 s:\n{}", apache.error_log());
}

fn exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn apache_runs_the_example_as_a_cgi_program() {
    ensure_apache();
    let binary = cgi_echo();
    let (apache, port) = start_apache(&binary);

    let reply = exchange(
        port,
        b"POST /cgi-bin/cgi_echo/a%20b/./c?x=1&y= HTTP/1.1\r\nHost: 127.0.0.1\r\n\
X-Probe: One  Two\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\
Connection: close\r\n\r\nhello world",
    );
    let log = apache.error_log();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}\n{log}");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    for expected in [
        "method=POST\n",
        "path_base=/cgi-bin/cgi_echo\n",
        // REQUEST_URI as sent (PATH_INFO would be decoded and normalised).
        "path=/a%20b/./c\n",
        "query=x=1&y=\n",
        "header x-probe: One  Two\n",
        "header content-type: text/plain\n",
        "header content-length: 11\n",
        "header host: 127.0.0.1\n",
        "body=hello world",
    ] {
        assert!(
            body.contains(expected),
            "{expected:?} missing from:\n{body}\n{log}"
        );
    }

    // A chunked request body reaches the program without CONTENT_LENGTH,
    // and is read to the end of stdin.
    let reply = exchange(
        port,
        b"PUT /cgi-bin/cgi_echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n again\r\n0\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("method=PUT\n"), "{reply}");
    assert!(reply.contains("path=\n"), "{reply}");
    // The response has no length: Apache chunks it.
    assert!(reply.contains("body=hello again\r\n0\r\n\r\n"), "{reply}");
}
