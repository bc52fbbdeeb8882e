//! Harness pieces the test modules share.

/// Returns `Err(format!(...))` from the enclosing function unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

pub(crate) mod raft_model;
