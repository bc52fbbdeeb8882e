//! What a running simulation says about itself: its seed at the start, the
//! one command that reproduces a failure bit for bit, and (quietly, inside
//! campaigns) its first failure, kept for the report: a [`Failure`] raised
//! as a panic's payload as it is, any other panic as a
//! [`FailureClass::Panic`](super::failure::FailureClass::Panic).

use std::cell::RefCell;
use std::sync::Once;

use super::failure::Failure;

#[derive(Default)]
struct RunContext {
    /// The command that reruns the simulation on this thread.
    reproduce: Option<String>,
    /// Inside a campaign: print nothing, keep the failure message.
    quiet: bool,
    /// Write no history, timeline or trace files for this run.
    no_files: bool,
    last_panic: Option<Failure>,
    /// When the first panic happened, in the simulation's (virtual) time.
    last_panic_at: Option<std::time::Instant>,
}

thread_local! {
    // Each madsim seed runs on a thread of its own, so this is per run.
    static CONTEXT: RefCell<RunContext> = RefCell::new(RunContext::default());
}

static HOOK: Once = Once::new();

/// The test binary's target name, e.g. `raft_3a` from `.../deps/raft_3a-0123abcd`.
pub fn test_binary_name() -> String {
    let exe = std::env::args().next().unwrap_or_default();
    let file = std::path::Path::new(&exe).file_name().and_then(|f| f.to_str()).unwrap_or("").to_string();
    match file.rsplit_once('-') {
        Some((name, hash)) if !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => file,
    }
}

static CLI_COMMAND: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records which binary the command line runs as (`argv[0]`), for the
/// reproduce commands it prints (see [`cli_command`]). Set once.
pub fn set_cli_command(argv0: &str) {
    let _ = CLI_COMMAND.set(cli_command_for(argv0));
}

/// The command that runs the binary at `argv0` again through cargo: this
/// crate's `kvraft` is the package's default binary; another is named with
/// `--bin`, or `--example` if it is one.
pub fn cli_command_for(argv0: &str) -> String {
    let path = std::path::Path::new(argv0);
    let stem = path.file_stem().and_then(|f| f.to_str()).unwrap_or("");
    let example = path.parent().and_then(|d| d.file_name()).is_some_and(|d| d == "examples");
    match stem {
        "" | "kvraft" => "cargo run --release --".to_string(),
        name if example => format!("cargo run --release --example {name} --"),
        bin => format!("cargo run --release --bin {bin} --"),
    }
}

/// The start of a command that runs this process's command line again:
/// `cargo run --release --` for this crate's `kvraft`, `cargo run
/// --release --bin NAME --` for a user's binary made with
/// `kvraft::cli::main_with` (and for anything else, such as a test
/// binary, the former).
pub fn cli_command() -> String {
    CLI_COMMAND.get().cloned().unwrap_or_else(|| "cargo run --release --".to_string())
}

/// The command that reruns test `name` of this test binary with `seed`.
pub fn reproduce_command(name: &str, seed: u64) -> String {
    CONTEXT.with(|c| c.borrow().reproduce.clone()).unwrap_or_else(|| {
        format!("MADSIM_TEST_SEED={seed} cargo test --release --test {} -- {name} --exact", test_binary_name())
    })
}

/// Initialises logging (`RUST_LOG`, quiet by default) once per process.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A panic's payload as a failure: a [`Failure`] raised as it is; any
/// other panic by its message, where it happened and when.
fn failure_of(info: &std::panic::PanicHookInfo<'_>) -> Failure {
    if let Some(f) = info.payload().downcast_ref::<Failure>() {
        return f.clone();
    }
    let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    };
    let at = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
    Failure::panic(format!("{msg}{at}"))
}

fn install_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTEXT.with(|c| c.borrow().quiet) {
                let failure = failure_of(info);
                let time = madsim::time::TimeHandle::try_current();
                CONTEXT.with(|c| {
                    let mut c = c.borrow_mut();
                    // The first panic is the cause; later ones are fallout.
                    if c.last_panic.is_none() {
                        c.last_panic = Some(failure);
                        c.last_panic_at = time.map(|t| t.now_instant());
                    }
                });
                return;
            }
            match info.payload().downcast_ref::<Failure>() {
                // The default hook cannot show a typed payload.
                Some(f) => {
                    let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                    eprintln!("run failed{at}: {f}");
                }
                None => prev(info),
            }
            CONTEXT.with(|c| {
                if let Some(cmd) = c.borrow().reproduce.as_ref() {
                    eprintln!("reproduce with: {cmd}");
                }
            });
        }));
    });
}

/// Prints the seed of the running simulation and arranges for a panic on this
/// thread to print the reproduce command. Returns the seed.
pub fn announce(test: &str) -> u64 {
    init_logging();
    install_hook();
    let seed = madsim::runtime::Handle::current().seed();
    let cmd = reproduce_command(test, seed);
    say(format_args!("[{test}] seed {seed}"));
    CONTEXT.with(|c| c.borrow_mut().reproduce = Some(cmd));
    seed
}

/// Sets up a campaign run on this thread: nothing printed, panics kept.
pub fn enter_quiet_run(reproduce: String) {
    install_hook();
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.quiet = true;
        c.reproduce = Some(reproduce);
        c.last_panic = None;
        c.last_panic_at = None;
        c.no_files = false;
    });
}

/// Whether this thread's run writes no files (see [`writes_files`]).
pub fn set_no_files(on: bool) {
    CONTEXT.with(|c| c.borrow_mut().no_files = on);
}

/// Whether this thread's run may write its history, timeline and trace
/// files (shrink candidates do not: they would overwrite the files of the
/// failure being shrunk, which has the same name).
pub fn writes_files() -> bool {
    CONTEXT.with(|c| !c.borrow().no_files)
}

/// The first failure (or other panic) of this thread's quiet run.
pub fn take_panic() -> Option<Failure> {
    CONTEXT.with(|c| c.borrow_mut().last_panic.take())
}

/// When the first panic of this thread's quiet run happened (virtual time).
pub fn take_panic_at() -> Option<std::time::Instant> {
    CONTEXT.with(|c| c.borrow_mut().last_panic_at.take())
}

/// Whether this thread runs a quiet campaign run.
pub fn is_quiet() -> bool {
    CONTEXT.with(|c| c.borrow().quiet)
}

/// Prints a line of a run's report, unless in a quiet campaign run.
pub fn say(msg: impl std::fmt::Display) {
    if !CONTEXT.with(|c| c.borrow().quiet) {
        println!("{msg}");
    }
}
