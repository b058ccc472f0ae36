//! A private PostgreSQL for the `postgresql` store's tests: Debian's own
//! server binaries (`initdb`, `pg_ctl` from /usr/lib/postgresql/N/bin) on
//! a temporary data directory owned by the `postgres` account, listening
//! on a free loopback port and a private socket directory, with TLS from a
//! throwaway CA (`openssl`) and client-certificate authentication for
//! every role over TCP. The machine's own cluster (/var/lib/postgresql,
//! port 5432) is never touched; drop stops the server and removes it all.
//!
//! [`Postgres::with_schema`] is what most tests want: a server with the
//! schema made by the real `otp-enroll db init`. [`Postgres::host_conninfo`]
//! makes a host's login role (a member of `pam_otp_host`) with its own
//! certificate, as the admin guide's fleet set-up does.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::{binary_path, require_root, test_root, unique_id};

/// The database the tests use.
const DBNAME: &str = "pam_otp";

/// A running private server; stopped and removed on drop.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Whether pg_ctl started it and nothing stopped it since (atomic: a
    /// test may crash it from one thread while others log in).
    running: AtomicBool,
    /// The network namespace the server runs in (None: the test's own).
    netns: Option<String>,
    /// The address clients connect to (the first listen address).
    host: String,
}

/// The newest Debian PostgreSQL server's binaries.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server installed (apt install postgresql)")
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("no /usr/lib/postgresql/N/bin/pg_ctl")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("user postgres");
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .unwrap();
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("group postgres");
    (uid, gid)
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn openssl(args: &[&str], dir: &Path) {
    ok(
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl installed"),
        &format!("openssl {args:?}"),
    );
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// `otp-enroll db init` as the database owner, with a config naming
    /// nothing but a private state_dir and the built helper; its stdout.
    pub fn otp_enroll_db_init(&self) -> String {
        let dir = test_root().join(crate::unique("pgcfg"));
        fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("pam_otp.toml");
        fs::write(
            &cfg,
            format!(
                "state_dir = {:?}\n[postgresql]\n{}",
                dir.join("state").to_string_lossy(),
                helper_line()
            ),
        )
        .unwrap();
        let out = Command::new(binary_path("otp-enroll"))
            .arg("--config")
            .arg(&cfg)
            .args(["db", "init", "--conninfo", &self.super_conninfo()])
            .output()
            .unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "db init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A server on 127.0.0.1.
    pub fn start() -> Postgres {
        Postgres::start_on(&["127.0.0.1"])
    }

    /// A server listening on `addrs`.
    pub fn start_on(addrs: &[&str]) -> Postgres {
        Postgres::start_placed(None, addrs)
    }

    /// A server in the network namespace `netns` (made by
    /// [`crate::netns::Segment`]), listening on `addrs` there: hosts in
    /// other namespaces reach it across the segment. The test itself
    /// still talks to it over its Unix socket (the file system is shared).
    pub fn start_in(netns: &str, addrs: &[&str]) -> Postgres {
        Postgres::start_placed(Some(netns), addrs)
    }

    fn start_placed(netns: Option<&str>, addrs: &[&str]) -> Postgres {
        require_root();
        let bin = server_bin();
        let (uid, gid) = postgres_ids();
        let dir = test_root().join(format!(
            "pg-{}-{}",
            unique_id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(dir.join("sock")).unwrap();
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let mut pg = Postgres {
            dir,
            bin,
            // Inside a namespace of its own every port is free; the
            // namespace's addresses are not bindable here, so take one
            // free on loopback (the socket file's name carries it too).
            port: free_port(),
            running: AtomicBool::new(false),
            netns: netns.map(str::to_string),
            host: addrs.first().unwrap_or(&"127.0.0.1").to_string(),
        };
        pg.make_certs(addrs);
        for p in [pg.dir.join("sock"), pg.data()] {
            chown(&p, Some(uid), Some(gid)).unwrap();
        }
        fs::set_permissions(pg.data(), fs::Permissions::from_mode(0o700)).unwrap();
        ok(
            pg.as_postgres(&pg.bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                ])
                .arg(pg.data())
                .output()
                .unwrap(),
            "initdb",
        );
        for f in ["server.crt", "server.key", "ca.crt"] {
            let to = pg.data().join(f);
            fs::copy(pg.dir.join("tls").join(f), &to).unwrap();
            chown(&to, Some(uid), Some(gid)).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let conf = format!(
            "listen_addresses = '{}'\nport = {}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n\
             fsync = off\nmax_connections = 100\n",
            addrs.join(","),
            pg.port,
            pg.socket_dir().display()
        );
        let mut text = fs::read_to_string(pg.data().join("postgresql.conf")).unwrap();
        text.push_str(&conf);
        fs::write(pg.data().join("postgresql.conf"), text).unwrap();
        fs::write(
            pg.data().join("pg_hba.conf"),
            "local all all trust\nlocal replication all trust\nhostssl all all 0.0.0.0/0 cert\nhostssl all all ::/0 cert\n",
        )
        .unwrap();
        pg.start_again();
        ok(
            pg.psql_in("postgres", &format!("CREATE DATABASE {DBNAME}")),
            "createdb",
        );
        pg
    }

    /// A server with the schema, made by `otp-enroll db init`.
    pub fn with_schema() -> Postgres {
        Postgres::start().init_schema()
    }

    /// [`Postgres::start_in`] with the schema.
    pub fn with_schema_in(netns: &str, addrs: &[&str]) -> Postgres {
        Postgres::start_in(netns, addrs).init_schema()
    }

    /// Creates the schema with the real `otp-enroll db init` (over the
    /// Unix socket, as a database's admin would on its machine).
    fn init_schema(self) -> Postgres {
        let pg = self;
        let cfg = pg.dir.join("otp.toml");
        fs::write(
            &cfg,
            format!(
                "state_dir = {:?}\n[postgresql]\n{}",
                pg.dir.join("state").to_string_lossy(),
                helper_line()
            ),
        )
        .unwrap();
        let out = ok(
            Command::new(binary_path("otp-enroll"))
                .arg("--config")
                .arg(&cfg)
                .args(["db", "init", "--conninfo", &pg.super_conninfo()])
                .output()
                .unwrap(),
            "otp-enroll db init",
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!(
                "created schema pam_otp version {}",
                otp_core::store::postgresql::SCHEMA_VERSION
            )),
            "{out:?}"
        );
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` as the OS user postgres, in the server's namespace: the
    /// server pg_ctl starts inherits it.
    fn as_postgres(&self, program: &Path) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => crate::netns::netns_command(ns, "runuser"),
            None => Command::new("runuser"),
        };
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    }

    /// The test CA and the server's certificate (SAN: every listen
    /// address, and localhost).
    fn make_certs(&self, addrs: &[&str]) {
        let tls = self.dir.join("tls");
        fs::create_dir_all(&tls).unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=pam_otp test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
            &tls,
        );
        let san: Vec<String> = addrs
            .iter()
            .map(|a| format!("IP:{a}"))
            .chain(["DNS:localhost".to_string()])
            .collect();
        fs::write(
            tls.join("san.ext"),
            format!("subjectAltName={}\n", san.join(",")),
        )
        .unwrap();
        self.sign(&tls, "server", "localhost", Some("san.ext"));
    }

    fn sign(&self, tls: &Path, name: &str, cn: &str, ext: Option<&str>) {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            tls,
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
        ];
        if let Some(e) = ext {
            args.extend(["-extfile", e]);
        }
        openssl(&args, tls);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address hosts connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's log (for a failing test's message).
    pub fn log(&self) -> String {
        fs::read_to_string(self.data().join("server.log")).unwrap_or_default()
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    pub fn dbname(&self) -> &str {
        DBNAME
    }

    /// The superuser over the private socket (trusted there only; the
    /// server's account checked with requirepeer).
    pub fn super_conninfo(&self) -> String {
        format!(
            "host={} port={} dbname={DBNAME} user=postgres requirepeer=postgres",
            self.socket_dir().display(),
            self.port
        )
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("tls").join("ca.crt")
    }

    /// A client certificate with CN = `role` and its key (root's, 0600),
    /// written into `dir`.
    pub fn client_cert(&self, role: &str, dir: &Path) -> (PathBuf, PathBuf) {
        let tls = self.dir.join("tls");
        let name = format!("client-{role}");
        self.sign(&tls, &name, role, None);
        let (crt, key) = (
            dir.join(format!("{role}.crt")),
            dir.join(format!("{role}.key")),
        );
        fs::copy(tls.join(format!("{name}.crt")), &crt).unwrap();
        fs::copy(tls.join(format!("{name}.key")), &key).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        (crt, key)
    }

    fn conninfo_for(&self, role: &str, group: &str, dir: &Path, timeout: u64) -> String {
        ok(
            self.psql(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN IN ROLE {group}; END IF; END $$"
            )),
            "create role",
        );
        let (crt, key) = self.client_cert(role, dir);
        format!(
            "host={} port={} dbname={DBNAME} user={role} sslmode=verify-full sslrootcert={} sslcert={} sslkey={} connect_timeout={timeout}",
            self.host,
            self.port,
            self.ca_cert().display(),
            crt.display(),
            key.display()
        )
    }

    /// A host's connection: login role `role` in pam_otp_host, its own
    /// certificate (in `dir`), TLS with the server's name checked.
    pub fn host_conninfo(&self, role: &str, dir: &Path, timeout: u64) -> String {
        self.conninfo_for(role, "pam_otp_host", dir, timeout)
    }

    /// An admin's connection: login role `role` in pam_otp_admin.
    pub fn admin_conninfo(&self, role: &str, dir: &Path, timeout: u64) -> String {
        self.conninfo_for(role, "pam_otp_admin", dir, timeout)
    }

    fn psql_in(&self, db: &str, sql: &str) -> Output {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("psql installed")
    }

    /// `sql` as the superuser.
    pub fn psql(&self, sql: &str) -> Output {
        self.psql_in(DBNAME, sql)
    }

    /// `sql` as the superuser; its output, trimmed (fails the test on an error).
    pub fn psql_ok(&self, sql: &str) -> String {
        let out = ok(self.psql(sql), sql);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A whole SQL file's text (a schema), as the superuser, through
    /// psql's standard input (fails the test on an error).
    pub fn psql_script(&self, script: &str) {
        use std::io::Write;
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", DBNAME])
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        ok(child.wait_with_output().unwrap(), "psql -f -");
    }

    /// `sql` as the login role `role` (over the socket).
    pub fn psql_as(&self, role: &str, sql: &str) -> Output {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                role,
                "-d",
                DBNAME,
                "-c",
                sql,
            ])
            .output()
            .expect("psql installed")
    }

    /// A standby of this server on another port (pg_basebackup -R, the
    /// same certificates), made synchronous: this server's commits wait
    /// until the standby has them.
    pub fn start_standby(&self) -> Postgres {
        let dir = test_root().join(format!(
            "pg-{}-{}",
            unique_id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let (uid, gid) = postgres_ids();
        chown(dir.join("data"), Some(uid), Some(gid)).unwrap();
        fs::set_permissions(dir.join("data"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(dir.join("tls")).unwrap();
        for f in ["ca.crt", "ca.key"] {
            fs::copy(self.dir.join("tls").join(f), dir.join("tls").join(f)).unwrap();
        }
        let mut standby = Postgres {
            dir,
            bin: self.bin.clone(),
            port: free_port(),
            running: AtomicBool::new(false),
            netns: self.netns.clone(),
            host: self.host.clone(),
        };
        ok(
            standby
                .as_postgres(&self.bin.join("pg_basebackup"))
                .arg("-h")
                .arg(self.socket_dir())
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-c",
                    "fast",
                    "-X",
                    "stream",
                    "-R",
                    "-D",
                ])
                .arg(standby.data())
                .output()
                .unwrap(),
            "pg_basebackup",
        );
        // Same socket directory (names carry the port); its own port; the
        // primary's address in primary_conninfo came from -R.
        let conf = standby.data().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(&format!("port = {}\n", standby.port));
        fs::write(&conf, text).unwrap();
        fs::create_dir_all(standby.socket_dir()).unwrap();
        chown(standby.socket_dir(), Some(uid), Some(gid)).unwrap();
        let text = fs::read_to_string(&conf).unwrap().replace(
            &format!(
                "unix_socket_directories = '{}'",
                self.socket_dir().display()
            ),
            &format!(
                "unix_socket_directories = '{}'",
                standby.socket_dir().display()
            ),
        );
        fs::write(&conf, text).unwrap();
        standby.start_again();
        self.psql_ok("ALTER SYSTEM SET synchronous_standby_names = '*'");
        self.psql_ok("SELECT pg_reload_conf()");
        // Wait until the primary sees it as synchronous.
        for _ in 0..100 {
            if self.psql_ok("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
                == "1"
            {
                return standby;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the standby never became synchronous:\n{}", standby.log());
    }

    /// Promotes a standby to primary, waiting until it accepts writes.
    pub fn promote(&mut self) {
        ok(
            self.as_postgres(&self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(self.data())
                .arg("promote")
                .output()
                .unwrap(),
            "pg_ctl promote",
        );
    }

    /// Stops the server as a crash would (immediate shutdown).
    pub fn stop_immediate(&mut self) {
        self.stop_with("immediate");
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        self.stop_with("fast");
    }

    /// Crashes the server (immediate shutdown) while the fleet that uses
    /// it is shared with the threads logging in.
    pub fn crash(&self) {
        self.stop_with("immediate");
    }

    fn stop_with(&self, mode: &str) {
        if self.running.swap(false, Ordering::SeqCst) {
            ok(
                self.as_postgres(&self.bin.join("pg_ctl"))
                    .args(["-w", "-m", mode, "-D"])
                    .arg(self.data())
                    .arg("stop")
                    .output()
                    .unwrap(),
                "pg_ctl stop",
            );
        }
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&mut self) {
        ok(
            self.as_postgres(&self.bin.join("pg_ctl"))
                .args(["-w", "-t", "60", "-D"])
                .arg(self.data())
                .arg("-l")
                .arg(self.data().join("server.log"))
                .arg("start")
                .output()
                .unwrap(),
            "pg_ctl start",
        );
        self.running.store(true, Ordering::SeqCst);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running.load(Ordering::SeqCst) {
            let _ = self
                .as_postgres(&self.bin.join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(self.data())
                .arg("stop")
                .output();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A pam_otp config for the `postgresql` store: `extra` (top-level keys)
/// first, then the `[postgresql]` table.
pub fn fleet_config(conninfo: &str, admin_conninfo: &str, extra: &str) -> String {
    format!(
        "store = \"postgresql\"\n{extra}\n[postgresql]\nconninfo = {conninfo:?}\nadmin_conninfo = {admin_conninfo:?}\n{}",
        helper_line()
    )
}

/// The `[postgresql]` line that points the module and otp-enroll at the
/// helper this build made (installed: /usr/libexec/pam_otp/pq-helper).
pub fn helper_line() -> String {
    format!(
        "helper = {:?}\n",
        binary_path("pq-helper").to_string_lossy()
    )
}

/// A PostgreSQL cluster made by Debian's own `pg_createcluster` (what `apt
/// install postgresql` runs for 15/main), stopped and removed on drop: the
/// configuration Debian's package gives a new cluster (peer on the local
/// socket, scram-sha-256 for host lines, TLS with the snakeoil
/// certificate, `include_dir = 'conf.d'`, the machine's
/// /etc/postgresql-common/createcluster.conf), with what would clash with
/// the machine's own cluster moved aside: its configuration under a
/// private `PG_CLUSTER_CONF_ROOT` (postgresql-common's own switch for
/// clusters outside /etc/postgresql; with it, nothing goes through
/// systemd or apt), its data, socket directory and log in the test's
/// directory, a free port, `listen_addresses` left at Debian's default
/// (`localhost`). The commands that manage it (`pg_ctlcluster 15 main
/// restart`) work with [`DebianCluster::env`] set.
pub struct DebianCluster {
    dir: PathBuf,
    port: u16,
    version: String,
}

impl DebianCluster {
    /// `pg_createcluster <newest> main --start` with private directories.
    pub fn create() -> DebianCluster {
        require_root();
        let version = server_bin()
            .parent()
            .and_then(Path::file_name)
            .map(|v| v.to_string_lossy().into_owned())
            .expect("/usr/lib/postgresql/N");
        let dir = test_root().join(format!("debian-pg-{}", unique_id()));
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let cluster = DebianCluster {
            dir,
            port: free_port(),
            version,
        };
        let sock = cluster.socket_dir();
        fs::create_dir_all(&sock).unwrap();
        let (uid, gid) = postgres_ids();
        chown(&sock, Some(uid), Some(gid)).unwrap();
        // Debian's /var/run/postgresql: postgres's, group-writable (2775).
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o2775)).unwrap();
        ok(
            Command::new("pg_createcluster")
                .envs(cluster.env())
                .arg("-d")
                .arg(cluster.dir.join("data"))
                .arg("-s")
                .arg(&sock)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-p", &cluster.port.to_string(), "--start"])
                .args([cluster.version.as_str(), "main"])
                .output()
                .expect("postgresql-common installed"),
            "pg_createcluster",
        );
        cluster
    }

    /// The environment that points postgresql-common's commands
    /// (`pg_ctlcluster`, `pg_lsclusters`) at this cluster's configuration.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "PG_CLUSTER_CONF_ROOT",
            self.dir.join("etc").to_string_lossy().into_owned(),
        )]
    }

    /// Its configuration directory (Debian: /etc/postgresql/15/main).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("etc").join(&self.version).join("main")
    }

    /// Its socket directory (Debian: /var/run/postgresql).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log (for a failing test's message).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `sql` in database `db`, as the OS user postgres over the socket
    /// (peer authentication, as Debian sets it up); the output, trimmed.
    pub fn psql_as_postgres(&self, db: &str, sql: &str) -> String {
        let out = ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--", "psql", "-X", "-A", "-t", "-q"])
                .args(["-v", "ON_ERROR_STOP=1", "-h"])
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
                .current_dir("/")
                .output()
                .expect("psql installed"),
            sql,
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for DebianCluster {
    fn drop(&mut self) {
        let stopped = Command::new("pg_ctlcluster")
            .envs(self.env())
            .args(["--mode=immediate", self.version.as_str(), "main", "stop"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !stopped {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(server_bin().join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(self.dir.join("data"))
                .arg("stop")
                .output();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
