//! libpq itself: the only place that calls it, run only inside the
//! helper process ([`super::serve_helper`]), never in the program the PAM
//! module is loaded into.
//!
//! libpq, not a Rust client, because hosts must connect the way admins
//! already configure PostgreSQL clients: service files, TLS with
//! `sslmode=verify-full`, multi-host strings with
//! `target_session_attrs=read-write`, `connect_timeout`. Every libpq call
//! is its own `unsafe` block with the reason it is sound. What leaves this
//! file is owned Rust data: a result is copied out and freed at once.
//!
//! libpq is opened with dlopen(3) ([`Api`]), not linked: the helper is the
//! only program that needs it, and `pq-sys` still gives the types and
//! constants; the functions are looked up by name with the signatures of
//! libpq-fe.h, enums taken as the `int` C passes them as.
//!
//! A login must never hang on a database that stopped answering: the
//! connection is bounded by `connect_timeout` (libpq's own, per host
//! tried; always set, see [`super::pin`]), and every query by the same
//! number of seconds, after which it is cancelled.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pq_sys as ffi;

use super::pin::Parsed;
use super::{PqError, Rows};

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
    conninfo_parse:
        unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> *mut ffi::PQconninfoOption,
    freemem: unsafe extern "C" fn(*mut c_void),
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
            conninfo_parse: function!("PQconninfoParse"),
            freemem: function!("PQfreemem"),
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
pub(super) struct Direct {
    api: &'static Api,
    conn: NonNull<ffi::PGconn>,
    /// Seconds allowed for each answer.
    timeout: u64,
}

/// Drops libpq's notices (NOTICE: "relation exists, skipping" from an
/// idempotent `db init`, say): libpq would print them on stderr, which in
/// sshd is the client's channel or nowhere.
unsafe extern "C" fn ignore_notice(_arg: *mut c_void, _message: *const c_char) {}

impl Direct {
    /// Connects with `params`, every keyword libpq reads from the
    /// environment given a value ([`super::pin`]), and `timeout` (their
    /// `connect_timeout`) for each answer.
    pub(super) fn connect(params: &[(String, String)], timeout: u64) -> Result<Direct, PqError> {
        let api = api()?;
        let owned: Vec<(CString, CString)> = params
            .iter()
            .map(|(k, v)| Ok((CString::new(k.as_str())?, CString::new(v.as_str())?)))
            .collect::<Result<_, std::ffi::NulError>>()
            .map_err(|_| PqError::BadConninfo)?;
        let keywords: Vec<*const c_char> = owned
            .iter()
            .map(|(k, _)| k.as_ptr())
            .chain([ptr::null()])
            .collect();
        let values: Vec<*const c_char> = owned
            .iter()
            .map(|(_, v)| v.as_ptr())
            .chain([ptr::null()])
            .collect();
        // SAFETY: both arrays are NULL-terminated, of the same length, and
        // point to NUL-terminated strings that live until the call
        // returns; libpq copies what it keeps. expand_dbname 0: a dbname
        // is a name, never a connection string of its own.
        let raw = unsafe { (api.connectdb_params)(keywords.as_ptr(), values.as_ptr(), 0) };
        // NULL only when libpq could not allocate.
        let conn = NonNull::new(raw).ok_or_else(|| PqError::Connect("out of memory".into()))?;
        let conn = Direct { api, conn, timeout };
        // SAFETY: `conn` is a live connection object.
        let status = unsafe { (api.status)(conn.conn.as_ptr()) };
        if status != ffi::ConnStatusType::CONNECTION_OK as c_int {
            return Err(PqError::Connect(conn.error_message()));
        }
        // SAFETY: `conn` is live; the processor is a function that ignores
        // its arguments and lives for the whole program.
        unsafe {
            (api.set_notice_processor)(conn.conn.as_ptr(), Some(ignore_notice), ptr::null_mut())
        };
        Ok(conn)
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...), which
    /// never become part of the SQL.
    pub(super) fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Rows, PqError> {
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
    pub(super) fn execute_script(&mut self, sql: &str) -> Result<(), PqError> {
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
}

impl Drop for Direct {
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
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// libpq's own parse of `conninfo` (keyword/value or URI), with no
/// defaults filled in: each keyword it knows, the environment variable it
/// would read for it, and the value the string gives (if any).
pub(super) fn parse_conninfo(conninfo: &str) -> Result<Vec<Parsed>, PqError> {
    let api = api()?;
    let text = CString::new(conninfo).map_err(|_| PqError::BadConninfo)?;
    let mut errmsg: *mut c_char = ptr::null_mut();
    // SAFETY: `text` is NUL-terminated; `errmsg` is a valid place for
    // libpq to store a message pointer.
    let options = unsafe { (api.conninfo_parse)(text.as_ptr(), &mut errmsg) };
    if options.is_null() {
        let why = if errmsg.is_null() {
            "out of memory".to_string()
        } else {
            // SAFETY: libpq stored a NUL-terminated message there.
            let text = one_line(&unsafe { CStr::from_ptr(errmsg) }.to_string_lossy());
            // SAFETY: the message was allocated by libpq for us to free,
            // and is not used after this.
            unsafe { (api.freemem)(errmsg.cast()) };
            text
        };
        return Err(PqError::Refused(format!(
            "the connection string cannot be parsed: {why}"
        )));
    }
    let text_of = |p: *const c_char| {
        if p.is_null() {
            None
        } else {
            // SAFETY: a non-NULL field of the array is a NUL-terminated
            // string owned by it, copied before the array is freed.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    };
    let mut parsed = Vec::new();
    let mut i = 0;
    loop {
        // SAFETY: the array ends with an entry whose keyword is NULL, and
        // we stop there: `i` stays within it.
        let entry = unsafe { options.add(i) };
        // SAFETY: `entry` points to a live, initialised entry of it.
        let opt = unsafe { &*entry };
        let Some(keyword) = text_of(opt.keyword) else {
            break;
        };
        parsed.push(Parsed {
            keyword,
            envvar: text_of(opt.envvar),
            val: text_of(opt.val),
        });
        i += 1;
    }
    // SAFETY: the array came from PQconninfoParse and is not used after this.
    unsafe { (api.conninfo_free)(options) };
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_parameter_is_refused_before_libpq() {
        assert_eq!(
            Direct::connect(&[("host".into(), "a\0b".into())], 2).err(),
            Some(PqError::BadConninfo)
        );
    }

    #[test]
    fn nothing_listening_is_a_connect_error_not_a_hang() {
        // A unix socket directory with no server in it: refused at once.
        let dir = std::env::temp_dir().join(format!("pq-none-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let params = [
            ("host".to_string(), dir.display().to_string()),
            ("dbname".into(), "x".into()),
        ];
        let err = Direct::connect(&params, 2)
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
    fn the_parse_names_each_keyword_with_its_variable() {
        let parsed = parse_conninfo("host=db1 port=5433").unwrap();
        let host = parsed.iter().find(|p| p.keyword == "host").unwrap();
        assert_eq!(host.envvar.as_deref(), Some("PGHOST"));
        assert_eq!(host.val.as_deref(), Some("db1"));
        let user = parsed.iter().find(|p| p.keyword == "user").unwrap();
        assert_eq!(user.val, None);
        assert!(matches!(
            parse_conninfo("host='unterminated"),
            Err(PqError::Refused(_))
        ));
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("could not\n connect\n"), "could not connect");
    }
}
