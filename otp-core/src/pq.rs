//! The postgresql store's client: libpq, loaded when first needed.
//!
//! libpq, not a Rust client, because hosts must connect the way admins
//! already configure PostgreSQL clients: service files, `.pgpass`, TLS with
//! `sslmode=verify-full`, multi-host strings with
//! `target_session_attrs=read-write`, `connect_timeout`. This is the only
//! place that talks to it; every libpq call is its own `unsafe` block with
//! the reason it is sound. What leaves this file is owned Rust data: a
//! result is copied out and freed at once.
//!
//! libpq is opened with dlopen(3) at the first connection ([`Api`]), not
//! linked: it pulls in two dozen libraries (Kerberos, LDAP, GnuTLS, ...)
//! whose loading and relocation would cost every login of a host on the
//! `home` or `system` store about 16 million instructions and several
//! milliseconds for a store it does not use (bench/login-cost). `pq-sys`
//! still gives the types and constants; the functions are looked up by
//! name with the signatures of libpq-fe.h, enums taken as the `int` C
//! passes them as. Once loaded, libpq stays loaded for the process (a
//! long-running PAM server then pays for it once).
//!
//! A login must never hang on a database that stopped answering: the
//! connection is bounded by `connect_timeout` (libpq's own, per host
//! tried; [`DEFAULT_CONNECT_TIMEOUT`] when the connection string does not
//! set one), and every query by the same number of seconds, after which it
//! is cancelled and the connection dropped.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pq_sys as ffi;

/// Seconds to wait for a connection (per host) and for each answer, when
/// the connection string names no `connect_timeout`: libpq's own default
/// is to wait forever, which would hold a login (and an sshd slot) hostage.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 5;

/// What went wrong talking to the database. Its text names what was tried,
/// never a parameter's value (a code is a parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PqError {
    /// libpq (Debian: libpq5) cannot be loaded, or lacks a function.
    NoLibrary(String),
    /// The connection string cannot be used (a NUL byte in it).
    BadConninfo,
    /// No server could be reached or it refused us: libpq's message.
    Connect(String),
    /// No answer within the deadline; the query was cancelled.
    Timeout { seconds: u64 },
    /// The server answered with an error: SQLSTATE and message.
    Server { sqlstate: String, message: String },
    /// The connection broke or the answer was not what libpq expects.
    Broken(String),
}

impl fmt::Display for PqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PqError::NoLibrary(msg) => {
                write!(
                    f,
                    "the PostgreSQL client library cannot be loaded (libpq5): {msg}"
                )
            }
            PqError::BadConninfo => f.write_str("the connection string contains a NUL byte"),
            PqError::Connect(msg) => write!(f, "cannot connect to the database: {msg}"),
            PqError::Timeout { seconds } => {
                write!(f, "the database did not answer within {seconds} s")
            }
            PqError::Server { sqlstate, message } => {
                write!(f, "the database refused: {message} (SQLSTATE {sqlstate})")
            }
            PqError::Broken(msg) => write!(f, "the database connection failed: {msg}"),
        }
    }
}

impl std::error::Error for PqError {}

/// The rows of one answer, as text (NULL is `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rows {
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// Row `r`, column `c`, or `None` when absent or NULL.
    pub fn get(&self, r: usize, c: usize) -> Option<&str> {
        self.rows.get(r)?.get(c)?.as_deref()
    }
}

/// The soname opened: the ABI Debian's libpq5 (and every libpq since
/// PostgreSQL 8.4) provides.
const LIBPQ: &str = "libpq.so.5";

/// The libpq functions this file calls, looked up in the loaded library.
/// Signatures as in libpq-fe.h; an enum result is the C `int` it is.
struct Api {
    connectdb_params:
        unsafe extern "C" fn(*const *const c_char, *const *const c_char, c_int) -> *mut ffi::PGconn,
    status: unsafe extern "C" fn(*const ffi::PGconn) -> c_int,
    set_notice_processor: unsafe extern "C" fn(
        *mut ffi::PGconn,
        ffi::PQnoticeProcessor,
        *mut c_void,
    ) -> ffi::PQnoticeProcessor,
    send_query_params: unsafe extern "C" fn(
        *mut ffi::PGconn,
        *const c_char,
        c_int,
        *const ffi::Oid,
        *const *const c_char,
        *const c_int,
        *const c_int,
        c_int,
    ) -> c_int,
    send_query: unsafe extern "C" fn(*mut ffi::PGconn, *const c_char) -> c_int,
    get_result: unsafe extern "C" fn(*mut ffi::PGconn) -> *mut ffi::PGresult,
    flush: unsafe extern "C" fn(*mut ffi::PGconn) -> c_int,
    is_busy: unsafe extern "C" fn(*mut ffi::PGconn) -> c_int,
    consume_input: unsafe extern "C" fn(*mut ffi::PGconn) -> c_int,
    socket: unsafe extern "C" fn(*const ffi::PGconn) -> c_int,
    get_cancel: unsafe extern "C" fn(*mut ffi::PGconn) -> *mut ffi::PGcancel,
    cancel: unsafe extern "C" fn(*mut ffi::PGcancel, *mut c_char, c_int) -> c_int,
    free_cancel: unsafe extern "C" fn(*mut ffi::PGcancel),
    error_message: unsafe extern "C" fn(*const ffi::PGconn) -> *mut c_char,
    conninfo: unsafe extern "C" fn(*mut ffi::PGconn) -> *mut ffi::PQconninfoOption,
    conninfo_free: unsafe extern "C" fn(*mut ffi::PQconninfoOption),
    finish: unsafe extern "C" fn(*mut ffi::PGconn),
    clear: unsafe extern "C" fn(*mut ffi::PGresult),
    result_status: unsafe extern "C" fn(*const ffi::PGresult) -> c_int,
    ntuples: unsafe extern "C" fn(*const ffi::PGresult) -> c_int,
    nfields: unsafe extern "C" fn(*const ffi::PGresult) -> c_int,
    getisnull: unsafe extern "C" fn(*const ffi::PGresult, c_int, c_int) -> c_int,
    getvalue: unsafe extern "C" fn(*const ffi::PGresult, c_int, c_int) -> *mut c_char,
    result_error_field: unsafe extern "C" fn(*const ffi::PGresult, c_int) -> *mut c_char,
    /// Kept open for the process: the pointers above point into it.
    _library: Library,
}

/// libpq, loaded once per process (or the reason it could not be).
fn api() -> Result<&'static Api, PqError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| Api::load(LIBPQ))
        .as_ref()
        .map_err(|e| PqError::NoLibrary(e.clone()))
}

impl Api {
    fn load(soname: &str) -> Result<Api, String> {
        // SAFETY: loading libpq runs its initialisers (and its
        // dependencies'), which are made to run in any program that links
        // it; RTLD_LOCAL keeps its symbols out of the global scope of the
        // process we are loaded into.
        let library = unsafe { Library::open(Some(soname), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| describe(&e))?;
        macro_rules! function {
            ($name:literal) => {
                // SAFETY: the field's type, which the look-up gives the
                // symbol, is the function's prototype in libpq-fe.h (an
                // enum result as the C int it is); the pointer is used
                // only while `library` is open, which is for good.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: {}", $name, describe(&e)))?
            };
        }
        Ok(Api {
            connectdb_params: function!("PQconnectdbParams"),
            status: function!("PQstatus"),
            set_notice_processor: function!("PQsetNoticeProcessor"),
            send_query_params: function!("PQsendQueryParams"),
            send_query: function!("PQsendQuery"),
            get_result: function!("PQgetResult"),
            flush: function!("PQflush"),
            is_busy: function!("PQisBusy"),
            consume_input: function!("PQconsumeInput"),
            socket: function!("PQsocket"),
            get_cancel: function!("PQgetCancel"),
            cancel: function!("PQcancel"),
            free_cancel: function!("PQfreeCancel"),
            error_message: function!("PQerrorMessage"),
            conninfo: function!("PQconninfo"),
            conninfo_free: function!("PQconninfoFree"),
            finish: function!("PQfinish"),
            clear: function!("PQclear"),
            result_status: function!("PQresultStatus"),
            ntuples: function!("PQntuples"),
            nfields: function!("PQnfields"),
            getisnull: function!("PQgetisnull"),
            getvalue: function!("PQgetvalue"),
            result_error_field: function!("PQresultErrorField"),
            _library: library,
        })
    }
}

/// libloading's error with dlerror(3)'s text (its source), which names
/// the file and why.
fn describe(e: &libloading::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(why) => format!("{e}: {why}"),
        None => e.to_string(),
    }
}

/// One connection, closed when dropped.
pub struct Connection {
    api: &'static Api,
    conn: NonNull<ffi::PGconn>,
    /// Seconds allowed for each answer.
    timeout: u64,
}

/// Drops libpq's notices (NOTICE: "relation exists, skipping" from an
/// idempotent `db init`, say): libpq would print them on stderr, which in
/// sshd is the client's channel or nowhere.
unsafe extern "C" fn ignore_notice(_arg: *mut c_void, _message: *const c_char) {}

impl Connection {
    /// Connects with `conninfo` (a libpq connection string or URI).
    pub fn connect(conninfo: &str) -> Result<Connection, PqError> {
        let api = api()?;
        let default_timeout =
            CString::new(DEFAULT_CONNECT_TIMEOUT.to_string()).map_err(|_| PqError::BadConninfo)?;
        let conninfo = CString::new(conninfo).map_err(|_| PqError::BadConninfo)?;
        // Our default first: the expanded `dbname` (the whole conninfo)
        // comes after it and overrides what it sets itself.
        let keywords: [*const c_char; 3] =
            [c"connect_timeout".as_ptr(), c"dbname".as_ptr(), ptr::null()];
        let values: [*const c_char; 3] = [default_timeout.as_ptr(), conninfo.as_ptr(), ptr::null()];
        // SAFETY: both arrays are NULL-terminated, of the same length, and
        // point to NUL-terminated strings that live until the call
        // returns; libpq copies what it keeps.
        let raw = unsafe { (api.connectdb_params)(keywords.as_ptr(), values.as_ptr(), 1) };
        // NULL only when libpq could not allocate.
        let conn = NonNull::new(raw).ok_or_else(|| PqError::Connect("out of memory".into()))?;
        let mut conn = Connection {
            api,
            conn,
            timeout: DEFAULT_CONNECT_TIMEOUT,
        };
        // SAFETY: `conn` is a live connection object.
        let status = unsafe { (api.status)(conn.conn.as_ptr()) };
        if status != ffi::ConnStatusType::CONNECTION_OK as c_int {
            return Err(PqError::Connect(conn.error_message()));
        }
        conn.timeout = conn.connect_timeout().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        // SAFETY: `conn` is live; the processor is a function that ignores
        // its arguments and lives for the whole program.
        unsafe {
            (api.set_notice_processor)(conn.conn.as_ptr(), Some(ignore_notice), ptr::null_mut())
        };
        Ok(conn)
    }

    /// The seconds each answer may take (the connection's `connect_timeout`).
    pub fn timeout(&self) -> u64 {
        self.timeout
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...), which
    /// never become part of the SQL.
    pub fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Rows, PqError> {
        let sql = CString::new(sql).map_err(|_| PqError::Broken("NUL in a statement".into()))?;
        // A NUL inside a parameter could not be sent as text anyway: the
        // caller's input is refused as the server would refuse it.
        let owned: Vec<Option<CString>> = params
            .iter()
            .map(|p| p.map(CString::new).transpose())
            .collect::<Result<_, _>>()
            .map_err(|_| PqError::Server {
                sqlstate: "22021".into(),
                message: "a parameter contains a NUL byte".into(),
            })?;
        let values: Vec<*const c_char> = owned
            .iter()
            .map(|p| p.as_ref().map_or(ptr::null(), |c| c.as_ptr()))
            .collect();
        let n = c_int::try_from(values.len())
            .map_err(|_| PqError::Broken("too many parameters".into()))?;
        // SAFETY: `sql` is NUL-terminated; `values` holds `n` pointers to
        // NUL-terminated strings (or NULL for SQL NULL) that outlive the
        // call; NULL types, lengths and formats mean "text, inferred",
        // which libpq documents for text parameters; result format 0 is text.
        let sent = unsafe {
            (self.api.send_query_params)(
                self.conn.as_ptr(),
                sql.as_ptr(),
                n,
                ptr::null(),
                values.as_ptr(),
                ptr::null(),
                ptr::null(),
                0,
            )
        };
        if sent != 1 {
            return Err(PqError::Broken(self.error_message()));
        }
        self.answer()
    }

    /// Runs a script of several statements (simple query protocol), as
    /// `psql -f` would: `otp-enroll db init` sends the schema this way.
    pub fn execute_script(&mut self, sql: &str) -> Result<(), PqError> {
        let sql = CString::new(sql).map_err(|_| PqError::Broken("NUL in the script".into()))?;
        // SAFETY: `sql` is NUL-terminated and outlives the call.
        let sent = unsafe { (self.api.send_query)(self.conn.as_ptr(), sql.as_ptr()) };
        if sent != 1 {
            return Err(PqError::Broken(self.error_message()));
        }
        self.answer().map(|_| ())
    }

    /// Waits (bounded) for every result of the statement just sent; the
    /// last result's rows are returned, the first error wins.
    fn answer(&mut self) -> Result<Rows, PqError> {
        let deadline = monotonic_now() + Duration::from_secs(self.timeout);
        self.flush(deadline)?;
        let mut rows = Rows::default();
        let mut first_error = None;
        loop {
            self.wait_until_ready(deadline)?;
            // SAFETY: `conn` is live; not busy, so this does not block.
            let res = unsafe { (self.api.get_result)(self.conn.as_ptr()) };
            let Some(res) = NonNull::new(res) else {
                break;
            };
            let result = Result_ { api: self.api, res };
            match result.read() {
                Ok(r) => rows = r,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Sends what libpq buffered, waiting for the socket to take it.
    fn flush(&mut self, deadline: Instant) -> Result<(), PqError> {
        loop {
            // SAFETY: `conn` is live.
            let rc = unsafe { (self.api.flush)(self.conn.as_ptr()) };
            match rc {
                0 => return Ok(()),
                1 => self.wait(deadline, PollFlags::POLLOUT | PollFlags::POLLIN)?,
                _ => return Err(PqError::Broken(self.error_message())),
            }
        }
    }

    /// Reads input until libpq has a whole result to hand out.
    fn wait_until_ready(&mut self, deadline: Instant) -> Result<(), PqError> {
        loop {
            // SAFETY: `conn` is live.
            let busy = unsafe { (self.api.is_busy)(self.conn.as_ptr()) };
            if busy == 0 {
                return Ok(());
            }
            self.wait(deadline, PollFlags::POLLIN)?;
            // SAFETY: `conn` is live; this reads what the socket has.
            let ok = unsafe { (self.api.consume_input)(self.conn.as_ptr()) };
            if ok != 1 {
                return Err(PqError::Broken(self.error_message()));
            }
        }
    }

    /// Waits for the socket, or cancels the query at the deadline.
    fn wait(&mut self, deadline: Instant, events: PollFlags) -> Result<(), PqError> {
        // SAFETY: `conn` is live.
        let fd = unsafe { (self.api.socket)(self.conn.as_ptr()) };
        if fd < 0 {
            return Err(PqError::Broken(self.error_message()));
        }
        loop {
            let left = deadline.saturating_duration_since(monotonic_now());
            if left.is_zero() {
                self.cancel();
                return Err(PqError::Timeout {
                    seconds: self.timeout,
                });
            }
            let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
            // SAFETY: libpq owns the socket and keeps it open as long as
            // the connection lives, which outlasts this borrow.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let mut fds = [PollFd::new(borrowed, events)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(PqError::Broken(format!("poll: {e}"))),
            }
        }
    }

    /// Asks the server to stop the running statement (best effort: the
    /// connection is dropped after a timeout either way, which ends the
    /// transaction, so nothing half-done is committed).
    fn cancel(&mut self) {
        // SAFETY: `conn` is live.
        let cancel = unsafe { (self.api.get_cancel)(self.conn.as_ptr()) };
        if cancel.is_null() {
            return;
        }
        let mut errbuf = [0 as c_char; 256];
        // SAFETY: `cancel` is the object just made; `errbuf` is writable
        // for the length given.
        let _ = unsafe { (self.api.cancel)(cancel, errbuf.as_mut_ptr(), 256) };
        // SAFETY: made by PQgetCancel above and not used after this.
        unsafe { (self.api.free_cancel)(cancel) };
    }

    /// libpq's last message for this connection, one line.
    fn error_message(&self) -> String {
        // SAFETY: `conn` is live; the message is owned by it and copied
        // before anything else is called on it.
        let msg = unsafe { (self.api.error_message)(self.conn.as_ptr()) };
        if msg.is_null() {
            return "unknown error".into();
        }
        // SAFETY: libpq returns a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
        one_line(&text)
    }

    /// The `connect_timeout` in effect (from the string, a service file or
    /// our default).
    fn connect_timeout(&self) -> Option<u64> {
        // SAFETY: `conn` is live; the array is ours to free.
        let options = unsafe { (self.api.conninfo)(self.conn.as_ptr()) };
        if options.is_null() {
            return None;
        }
        let mut found = None;
        let mut i = 0;
        loop {
            // SAFETY: the array ends with an entry whose keyword is NULL,
            // and we stop there: `i` stays within it.
            let entry = unsafe { options.add(i) };
            // SAFETY: `entry` points to a live, initialised entry of it.
            let opt = unsafe { &*entry };
            if opt.keyword.is_null() {
                break;
            }
            // SAFETY: keyword is a NUL-terminated string of the array.
            let keyword = unsafe { CStr::from_ptr(opt.keyword) };
            if keyword == c"connect_timeout" && !opt.val.is_null() {
                // SAFETY: val is a NUL-terminated string of the array.
                let val = unsafe { CStr::from_ptr(opt.val) };
                // libpq's own rule: under 2 s means 2 s.
                found = val
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|&s| s > 0)
                    .map(|s| s.max(2));
            }
            i += 1;
        }
        // SAFETY: the array came from PQconninfo and is not used after this.
        unsafe { (self.api.conninfo_free)(options) };
        found
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: `conn` came from PQconnectdbParams and is finished once.
        unsafe { (self.api.finish)(self.conn.as_ptr()) };
    }
}

/// One result, cleared when dropped.
struct Result_ {
    api: &'static Api,
    res: NonNull<ffi::PGresult>,
}

impl Drop for Result_ {
    fn drop(&mut self) {
        // SAFETY: the result came from PQgetResult and is cleared once.
        unsafe { (self.api.clear)(self.res.as_ptr()) };
    }
}

impl Result_ {
    fn read(&self) -> Result<Rows, PqError> {
        let res = self.res.as_ptr();
        // SAFETY: `res` is a live result.
        let status = unsafe { (self.api.result_status)(res) };
        const TUPLES_OK: c_int = ffi::ExecStatusType::PGRES_TUPLES_OK as c_int;
        const COMMAND_OK: c_int = ffi::ExecStatusType::PGRES_COMMAND_OK as c_int;
        const EMPTY_QUERY: c_int = ffi::ExecStatusType::PGRES_EMPTY_QUERY as c_int;
        match status {
            TUPLES_OK => {}
            COMMAND_OK | EMPTY_QUERY => return Ok(Rows::default()),
            _ => {
                return Err(PqError::Server {
                    sqlstate: self.field(ffi::PG_DIAG_SQLSTATE).unwrap_or_default(),
                    message: self
                        .field(ffi::PG_DIAG_MESSAGE_PRIMARY)
                        .unwrap_or_else(|| "no message".into()),
                })
            }
        }
        // SAFETY: `res` is live.
        let nrows = unsafe { (self.api.ntuples)(res) };
        // SAFETY: `res` is live.
        let ncols = unsafe { (self.api.nfields)(res) };
        let mut rows = Vec::with_capacity(usize::try_from(nrows).unwrap_or(0));
        for r in 0..nrows {
            let mut row = Vec::with_capacity(usize::try_from(ncols).unwrap_or(0));
            for c in 0..ncols {
                // SAFETY: `r` and `c` are within the result's bounds.
                let null = unsafe { (self.api.getisnull)(res, r, c) };
                if null == 1 {
                    row.push(None);
                    continue;
                }
                // SAFETY: as above.
                let raw = unsafe { (self.api.getvalue)(res, r, c) };
                // SAFETY: a text value is NUL-terminated and owned by
                // `res`, copied here before `res` is cleared.
                let value = unsafe { CStr::from_ptr(raw) };
                row.push(Some(value.to_string_lossy().into_owned()));
            }
            rows.push(row);
        }
        Ok(Rows { rows })
    }

    fn field(&self, code: u8) -> Option<String> {
        // SAFETY: `res` is live; the field is NUL-terminated and owned by it.
        let text = unsafe { (self.api.result_error_field)(self.res.as_ptr(), c_int::from(code)) };
        if text.is_null() {
            return None;
        }
        // SAFETY: not NULL, NUL-terminated (above).
        Some(one_line(&unsafe { CStr::from_ptr(text) }.to_string_lossy()))
    }
}

/// The monotonic clock, for the deadline of an answer: how long to wait
/// on a socket, never a decision about a code (the database's clock makes
/// those), so the rule that only the glue reads the clock does not apply.
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}

/// libpq's messages end in newlines and sometimes span lines: one line,
/// for syslog.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_the_connection_string_is_refused_before_libpq() {
        assert_eq!(
            Connection::connect("host=a\0b").err(),
            Some(PqError::BadConninfo)
        );
    }

    #[test]
    fn nothing_listening_is_a_connect_error_not_a_hang() {
        // A unix socket directory with no server in it: refused at once.
        let dir = std::env::temp_dir().join(format!("pq-none-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let err = Connection::connect(&format!("host={} dbname=x", dir.display()))
            .err()
            .map(|e| matches!(e, PqError::Connect(_)));
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(err, Some(true));
    }

    #[test]
    fn libpq_is_loaded_and_a_missing_library_is_an_error_not_a_crash() {
        assert!(api().is_ok(), "libpq5 is installed where the tests run");
        let err = Api::load("libpq-not-there.so.5").err().unwrap_or_default();
        assert!(err.contains("libpq-not-there.so.5"), "{err}");
        let shown = PqError::NoLibrary(err).to_string();
        assert!(shown.contains("(libpq5)"), "{shown}");
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("could not\n connect\n"), "could not connect");
    }
}
