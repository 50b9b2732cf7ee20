//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory and `pg_ctl` on
//! a free loopback port, stopped and removed on drop. It needs Debian's `postgresql` package (the
//! binaries are found on `PATH` or under `/usr/lib/postgresql/*/bin`); run as root, the server
//! runs as the `postgres` user, since PostgreSQL refuses to run as root. Never touches a shared or
//! pre-existing database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The role tests connect as, and its password.
pub const USER: &str = "perdure";
pub const PASSWORD: &str = "perdure-test";

/// A running throwaway cluster.
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Where `initdb` and friends are.
pub fn find_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PERDURE_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl TempCluster {
    /// Creates and starts a cluster with a password-protected role [`USER`].
    pub fn start() -> Result<TempCluster, String> {
        let bin = find_bin().ok_or(
            "PostgreSQL is not installed (apt-get install postgresql; or set PERDURE_PG_BIN)",
        )?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "perdure-pg-{}-{}",
            std::process::id(),
            free_port().map_err(|e| e.to_string())?
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        let mut c = TempCluster {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            c.run(
                "chown",
                &["-R", "postgres:postgres", &c.dir.to_string_lossy()],
                false,
            )?;
        }
        let data = c.data().to_string_lossy().into_owned();
        c.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "--pwfile",
                &pwfile.to_string_lossy(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-locale",
                "-E",
                "UTF8",
            ],
            true,
        )?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| e.to_string())?;
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                c.dir.display()
            );
            let log = c.dir.join("log").to_string_lossy().into_owned();
            match c.run(
                "pg_ctl",
                &[
                    "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "30", "start",
                ],
                true,
            ) {
                Ok(()) => {
                    c.port = port;
                    c.watchdog();
                    return Ok(c);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("pg_ctl start failed: {last}"))
    }

    /// Stops the cluster and removes its directory when this process is gone, even if it was
    /// killed and never ran `Drop`.
    fn watchdog(&self) {
        let stop = format!(
            "{}{} -D {} -m immediate -w stop",
            if self.as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        use std::os::unix::process::CommandExt;
        // A process group of its own: a timeout that kills the test's group spares it.
        let _ = Command::new("sh")
            .process_group(0)
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&str], pg_bin: bool) -> Result<(), String> {
        let exe = if pg_bin {
            self.bin.join(program).to_string_lossy().into_owned()
        } else {
            program.to_string()
        };
        let mut cmd = if self.as_postgres && pg_bin {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (the data stays), as a database outage would.
    pub fn stop_server(&self) -> Result<(), String> {
        let data = self.data().to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"], true)
    }

    /// Starts the server again on the same port after [`stop_server`](Self::stop_server).
    pub fn start_server(&self) -> Result<(), String> {
        let data = self.data().to_string_lossy().into_owned();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "30", "start",
            ],
            true,
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
    }

    /// Runs SQL in a database (as the test role, over the local socket).
    pub fn psql(&self, db: &str, sql: &str) -> Result<(), String> {
        let port = self.port.to_string();
        let host = self.dir.to_string_lossy().into_owned();
        self.run(
            "psql",
            &[
                "-h",
                &host,
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
            true,
        )
    }

    /// `postgres://perdure:…@127.0.0.1:port/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data().to_string_lossy().into_owned();
            let _ = self.run(
                "pg_ctl",
                &["-D", &data, "-m", "immediate", "-w", "stop"],
                true,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
