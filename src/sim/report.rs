//! What every simulated test prints: its seed at the start, and on failure
//! the one command that reproduces it bit for bit.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    /// The reproduce command of the simulation running on this thread (each
    /// seed runs on a thread of its own).
    static REPRODUCE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// The test binary's target name, e.g. `raft_3a` from `.../deps/raft_3a-0123abcd`.
pub fn test_binary_name() -> String {
    let exe = std::env::args().next().unwrap_or_default();
    let file = std::path::Path::new(&exe).file_name().and_then(|f| f.to_str()).unwrap_or("").to_string();
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => file,
    }
}

/// The command that reruns test `name` of this binary with `seed`.
pub fn reproduce_command(name: &str, seed: u64) -> String {
    format!("MADSIM_TEST_SEED={seed} cargo test --release --test {} -- {name} --exact", test_binary_name())
}

/// Initialises logging (`RUST_LOG`, quiet by default) once per process.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Prints the seed of the running simulation and arranges for a panic on this
/// thread to print the reproduce command. Returns the seed.
pub fn announce(test: &str) -> u64 {
    init_logging();
    let seed = madsim::runtime::Handle::current().seed();
    let cmd = reproduce_command(test, seed);
    println!("[{test}] seed {seed}");
    REPRODUCE.with(|r| *r.borrow_mut() = Some(cmd));
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            prev(info);
            REPRODUCE.with(|r| {
                if let Some(cmd) = r.borrow().as_ref() {
                    eprintln!("reproduce with: {cmd}");
                }
            });
        }));
    });
    seed
}
