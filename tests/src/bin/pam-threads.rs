//! `pam-threads PLAN`: runs the logins of PLAN through the real libpam
//! (`pam_start_confdir`, `pam_set_item(PAM_RHOST)`, `pam_authenticate`,
//! `pam_end`) in this one process, on several threads at once, the way a
//! long-running PAM server (FreeRADIUS's rlm_pam, OpenVPN's auth-pam) runs
//! pam_otp; and reports each login's result and what the process holds
//! (resident memory, heap in use, open descriptors, whether the module is
//! mapped) after each round. `tests/threads.rs` writes the plan, runs this
//! (also under valgrind) and checks the report; nothing here decides
//! whether a result is right.
//!
//! The plan, one login a line, in the order each thread runs them:
//!
//! ```text
//! L <round> <thread> <confdir> <service> <user> <rhost> <code>
//! ```
//!
//! or the same after a first line `mode fresh`: see below.
//!
//! One pool of threads runs the whole plan, as a server keeps its own:
//! rounds run one after the other, a round's logins start together (a
//! barrier), and between rounds every handle is ended while the threads
//! wait, alive, and the main thread measures. With no handle open libpam
//! has dlclosed the module, so the next round loads it again. Round 0 is
//! the warm-up. In a round where one thread logs in, the conversation
//! also lists the descriptors open while the module waits for the code:
//! any opened since the start without close-on-exec is reported (with
//! more threads, libpam's own `fopen` of another handle's service file
//! would be seen). In `mode fresh`, each round has threads of its own
//! instead, all joined before it is measured: a live thread keeps freed
//! memory in its malloc cache (counted as in use), an exited one has
//! given it back, so the heap in use is then exact to the byte. With
//! `PAM_THREADS_SMAPS=<dir>`, /proc/self/smaps is
//! copied there after each round (to see what grew).
//!
//! The report, on stdout:
//!
//! ```text
//! fds_start <n> <targets...>
//! R <round> <thread> <index> <rc> <prompts> <messages> <not-cloexec targets, comma-separated or ->
//! round <r> logins <n> secs <s> rss_kb <kB> anon_kb <kB> file_kb <kB> trimmed_kb <kB> heap <bytes> heap_held <bytes> fds <n> module_mapped <0|1>
//! module_mapped_end <0|1>           (after the pool's threads exited)
//! fds_end <n> <targets...>
//! ```
//!
//! This binary talks to libpam through its C interface, so it has unsafe
//! code: each operation in its own block with its own SAFETY comment.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::sync::Barrier;

// ---- the part of libpam's interface this program uses ----------------

/// `pam_handle_t`, opaque.
#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

/// `struct pam_message`.
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`: `resp` is malloc'd by the application and freed
/// by libpam or the module.
#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_RHOST: c_int = 4;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// Linux-PAM's `PAM_MAX_NUM_MSG`.
const PAM_MAX_NUM_MSG: c_int = 32;

#[link(name = "pam")]
extern "C" {
    fn pam_start_confdir(
        service_name: *const c_char,
        user: *const c_char,
        pam_conversation: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut PamHandle, pam_status: c_int) -> c_int;
}

// ---- the conversation ---------------------------------------------

/// What one login's conversation answers and what it saw; lives on the
/// login's stack frame until after `pam_end`.
struct Answer<'a> {
    code: &'a CStr,
    prompts: Cell<u32>,
    messages: Cell<u32>,
    /// Descriptors open at the start of the program; `None`: no check.
    baseline: Option<&'a [i32]>,
    /// Targets of descriptors opened since the start without close-on-exec.
    not_cloexec: Cell<Vec<String>>,
}

/// Frees `replies[..n]` and the array itself.
fn free_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: `replies` is the calloc'd array of `n` responses.
        let reply = unsafe { replies.add(i) };
        // SAFETY: `reply` is within the array; calloc zeroed it, so `resp`
        // is NULL or a string strdup'd below.
        let resp = unsafe { (*reply).resp };
        // SAFETY: NULL or malloc'd by strdup, freed once, here.
        unsafe { libc::free(resp.cast()) };
    }
    // SAFETY: the array came from calloc and is not used after this.
    unsafe { libc::free(replies.cast()) };
}

/// Answers every prompt with the login's code (a malloc'd copy, as libpam
/// requires: whoever receives the replies frees them), and nothing to
/// messages. Never unwinds: nothing in here panics.
extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    let n = num_msg as usize;
    // SAFETY: calloc of n responses; NULL is checked.
    let replies = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) };
    let replies = replies.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    // SAFETY: appdata_ptr is the `Answer` given to pam_start_confdir, which
    // outlives the handle (run_login ends the handle before it drops).
    let answer = unsafe { &*appdata_ptr.cast::<Answer<'_>>() };
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of `num_msg` message
        // pointers: entry i < num_msg is within it.
        let entry = unsafe { msg.add(i) };
        // SAFETY: `entry` points to an initialised pointer of that array.
        let m = unsafe { *entry };
        if m.is_null() {
            free_replies(replies, n);
            return PAM_CONV_ERR;
        }
        // SAFETY: a non-NULL entry points to a message libpam keeps alive
        // for the whole call.
        let style = unsafe { (*m).msg_style };
        match style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                answer.prompts.set(answer.prompts.get() + 1);
                if let Some(baseline) = answer.baseline {
                    let mut seen = answer.not_cloexec.take();
                    seen.extend(new_fds_without_cloexec(baseline));
                    answer.not_cloexec.set(seen);
                }
                // SAFETY: the code is NUL-terminated; strdup copies it into
                // malloc'd memory (NULL is checked).
                let copy = unsafe { libc::strdup(answer.code.as_ptr()) };
                if copy.is_null() {
                    free_replies(replies, n);
                    return PAM_BUF_ERR;
                }
                // SAFETY: i < n: within the calloc'd array.
                let reply = unsafe { replies.add(i) };
                // SAFETY: `reply` points to a zeroed response of ours.
                unsafe { (*reply).resp = copy };
            }
            PAM_ERROR_MSG | PAM_TEXT_INFO => {
                answer.messages.set(answer.messages.get() + 1);
            }
            _ => {
                free_replies(replies, n);
                return PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: `resp` is libpam's out-pointer (not NULL, checked above); the
    // array is now libpam's to free.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

// ---- the process: descriptors, memory, mappings ---------------------

/// The open descriptors (the listing's own excluded).
fn open_fds() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    fds.sort_unstable();
    // The listing's own descriptor is gone by now: keep only the live.
    fds.retain(|&fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    fds
}

fn fd_target(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().replace([' ', ','], "_"))
        .unwrap_or_else(|_| "?".into())
}

/// Descriptors open now that were not at the start and lack FD_CLOEXEC.
fn new_fds_without_cloexec(baseline: &[i32]) -> Vec<String> {
    let mut found = Vec::new();
    for fd in open_fds() {
        if baseline.contains(&fd) {
            continue;
        }
        // SAFETY: F_GETFD reads a descriptor's flags; no memory involved.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            found.push(format!("{fd}={}", fd_target(fd)));
        }
    }
    found
}

/// A field of /proc/self/status in kB (`VmRSS`, `RssAnon`, `RssFile`).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes malloc has handed out and not got back (all arenas, mmapped
/// chunks included).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

/// Bytes malloc holds from the system (all arenas, mmapped chunks
/// included): what is in use plus what it keeps free.
fn heap_held() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    info.arena + info.hblkhd
}

fn module_mapped() -> bool {
    std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("libpam_otp"))
}

// ---- the logins ---------------------------------------------------

struct Login {
    round: u32,
    thread: u32,
    confdir: CString,
    service: CString,
    user: CString,
    rhost: CString,
    code: CString,
}

/// What the process holds after a round.
struct RoundFigures {
    secs: f64,
    rss_kb: u64,
    anon_kb: u64,
    file_kb: u64,
    /// VmRSS once malloc gave back what it could (malloc_trim).
    trimmed_kb: u64,
    heap: usize,
    heap_held: usize,
    fds: usize,
    module_mapped: bool,
}

struct Outcome {
    rc: c_int,
    prompts: u32,
    messages: u32,
    not_cloexec: Vec<String>,
}

/// One login, start to end: the result of pam_authenticate, or 1000 + the
/// code of the call before it that failed.
fn run_login(l: &Login, baseline: Option<&[i32]>) -> Outcome {
    let answer = Answer {
        code: &l.code,
        prompts: Cell::new(0),
        messages: Cell::new(0),
        baseline,
        not_cloexec: Cell::new(Vec::new()),
    };
    let conv = PamConv {
        conv: Some(converse),
        appdata_ptr: ptr::from_ref(&answer).cast_mut().cast(),
    };
    let mut pamh: *mut PamHandle = ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and live for the call; libpam
    // copies `conv` (whose `answer` outlives the handle: it is ended below,
    // before `answer` drops) and writes the handle to `pamh`.
    let rc = unsafe {
        pam_start_confdir(
            l.service.as_ptr(),
            l.user.as_ptr(),
            &conv,
            l.confdir.as_ptr(),
            &mut pamh,
        )
    };
    let rc = if rc != PAM_SUCCESS || pamh.is_null() {
        1000 + rc
    } else {
        // SAFETY: `pamh` is the live handle just started; libpam copies
        // the NUL-terminated string.
        let set = unsafe { pam_set_item(pamh, PAM_RHOST, l.rhost.as_ptr().cast()) };
        let rc = if set == PAM_SUCCESS {
            // SAFETY: `pamh` is live; the conversation's data outlives it.
            unsafe { pam_authenticate(pamh, 0) }
        } else {
            1000 + set
        };
        // SAFETY: `pamh` is live and ended once, here; not used after.
        let _ = unsafe { pam_end(pamh, rc % 1000) };
        rc
    };
    Outcome {
        rc,
        prompts: answer.prompts.get(),
        messages: answer.messages.get(),
        not_cloexec: answer.not_cloexec.take(),
    }
}

fn parse_plan(text: &str) -> Result<Vec<Login>, String> {
    let mut logins = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f[..] == ["mode", "fresh"] {
            continue;
        }
        let [tag, round, thread, confdir, service, user, rhost, code] = f[..] else {
            return Err(format!("plan line {}: {line:?}", n + 1));
        };
        if tag != "L" {
            return Err(format!("plan line {}: {line:?}", n + 1));
        }
        let c = |s: &str| CString::new(s).map_err(|_| format!("plan line {}: NUL", n + 1));
        logins.push(Login {
            round: round.parse().map_err(|_| format!("round: {line:?}"))?,
            thread: thread.parse().map_err(|_| format!("thread: {line:?}"))?,
            confdir: c(confdir)?,
            service: c(service)?,
            user: c(user)?,
            rhost: c(rhost)?,
            code: c(code)?,
        });
    }
    Ok(logins)
}

/// What the process holds now, after round `r`, which took `secs`.
fn measure(r: usize, secs: f64) -> RoundFigures {
    if let Some(dir) = std::env::var_os("PAM_THREADS_SMAPS") {
        let _ = std::fs::copy(
            "/proc/self/smaps",
            std::path::Path::new(&dir).join(format!("smaps.{r}")),
        );
    }
    let (rss_kb, anon_kb, file_kb) = (
        status_kb("VmRSS"),
        status_kb("RssAnon"),
        status_kb("RssFile"),
    );
    let (heap, heap_held) = (heap_in_use(), heap_held());
    // SAFETY: malloc_trim only gives free memory back to the system.
    unsafe { libc::malloc_trim(0) };
    RoundFigures {
        secs,
        rss_kb,
        anon_kb,
        file_kb,
        trimmed_kb: status_kb("VmRSS"),
        heap,
        heap_held,
        fds: open_fds().len(),
        module_mapped: module_mapped(),
    }
}

fn fd_report(tag: &str, fds: &[i32]) -> String {
    let targets: Vec<String> = fds
        .iter()
        .map(|&fd| format!("{fd}={}", fd_target(fd)))
        .collect();
    format!("{tag} {} {}", fds.len(), targets.join(" "))
}

fn main() {
    let Some(plan) = std::env::args().nth(1) else {
        eprintln!("usage: pam-threads PLAN");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&plan).unwrap_or_else(|e| {
        eprintln!("pam-threads: {plan}: {e}");
        std::process::exit(2);
    });
    let fresh = text.lines().next() == Some("mode fresh");
    let logins = match parse_plan(&text) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pam-threads: {e}");
            std::process::exit(2);
        }
    };
    let mut rounds: Vec<u32> = logins.iter().map(|l| l.round).collect();
    rounds.sort_unstable();
    rounds.dedup();
    let mut threads: Vec<u32> = logins.iter().map(|l| l.thread).collect();
    threads.sort_unstable();
    threads.dedup();

    // Everything the run needs is allocated before the first pam_start:
    // each thread's logins by round, where it puts their outcomes, the
    // figures; the report's lines are made only at the end. So the
    // program's own memory does not grow while the module's is measured.
    let plans: Vec<Vec<Vec<&Login>>> = threads
        .iter()
        .map(|&t| {
            rounds
                .iter()
                .map(|&r| {
                    logins
                        .iter()
                        .filter(|l| l.round == r && l.thread == t)
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut outcomes: Vec<Vec<Vec<Outcome>>> = plans
        .iter()
        .map(|by_round| {
            by_round
                .iter()
                .map(|mine| Vec::with_capacity(mine.len()))
                .collect()
        })
        .collect();
    let busy: Vec<usize> = (0..rounds.len())
        .map(|r| plans.iter().filter(|p| !p[r].is_empty()).count())
        .collect();
    let mut figures: Vec<RoundFigures> = Vec::with_capacity(rounds.len());

    let baseline = open_fds();
    let fds_start = fd_report("fds_start", &baseline);
    if fresh {
        // New threads for every round, all joined before it is measured:
        // each thread's malloc cache is given back at its exit, so the
        // heap in use is exact (no cached chunks of live threads in it).
        for r in 0..rounds.len() {
            #[allow(clippy::disallowed_methods)] // a measurement, not the code under test
            let started = std::time::Instant::now();
            let check = (busy[r] == 1).then_some(baseline.as_slice());
            std::thread::scope(|s| {
                let mut pool = Vec::new();
                for (by_round, outs) in plans.iter().zip(outcomes.iter_mut()) {
                    let (mine, out) = (&by_round[r], &mut outs[r]);
                    if mine.is_empty() {
                        continue;
                    }
                    pool.push(s.spawn(move || {
                        for l in mine {
                            out.push(run_login(l, check));
                        }
                    }));
                }
                for h in pool {
                    if h.join().is_err() {
                        std::process::exit(3);
                    }
                }
            });
            figures.push(measure(r, started.elapsed().as_secs_f64()));
        }
    } else {
        // One pool of threads for the whole run, as a server keeps its
        // own: between rounds they wait at the barrier, every handle
        // ended, while this thread measures; they exit after the last.
        let barrier = Barrier::new(threads.len() + 1);
        std::thread::scope(|s| {
            let mut pool = Vec::new();
            for (by_round, outs) in plans.iter().zip(outcomes.iter_mut()) {
                let barrier = &barrier;
                let baseline = baseline.as_slice();
                let busy = busy.as_slice();
                pool.push(s.spawn(move || {
                    for (r, (mine, out)) in by_round.iter().zip(outs.iter_mut()).enumerate() {
                        let check = (busy[r] == 1).then_some(baseline);
                        barrier.wait();
                        for l in mine {
                            out.push(run_login(l, check));
                        }
                        barrier.wait();
                    }
                }));
            }
            for r in 0..rounds.len() {
                barrier.wait();
                #[allow(clippy::disallowed_methods)] // a measurement, not the code under test
                let started = std::time::Instant::now();
                barrier.wait();
                figures.push(measure(r, started.elapsed().as_secs_f64()));
            }
            for h in pool {
                if h.join().is_err() {
                    std::process::exit(3);
                }
            }
        });
    }
    let fds_end = fd_report("fds_end", &open_fds());
    let mapped_end = format!("module_mapped_end {}", u8::from(module_mapped()));

    let mut report = vec![fds_start];
    for (i, (&r, f)) in rounds.iter().zip(&figures).enumerate() {
        let mut n = 0;
        for (&t, outs) in threads.iter().zip(&outcomes) {
            for (k, o) in outs[i].iter().enumerate() {
                n += 1;
                let bad = if o.not_cloexec.is_empty() {
                    "-".to_string()
                } else {
                    o.not_cloexec.join(",")
                };
                report.push(format!(
                    "R {r} {t} {k} {} {} {} {bad}",
                    o.rc, o.prompts, o.messages
                ));
            }
        }
        report.push(format!(
            "round {r} logins {n} secs {:.3} rss_kb {} anon_kb {} file_kb {} trimmed_kb {} \
             heap {} heap_held {} fds {} module_mapped {}",
            f.secs,
            f.rss_kb,
            f.anon_kb,
            f.file_kb,
            f.trimmed_kb,
            f.heap,
            f.heap_held,
            f.fds,
            u8::from(f.module_mapped),
        ));
    }
    report.push(mapped_end);
    report.push(fds_end);
    let mut text = report.join("\n");
    text.push('\n');
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err() {
        std::process::exit(4);
    }
}
