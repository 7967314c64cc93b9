//! Where the binaries under test are.

use std::path::PathBuf;

/// Path of a workspace binary (`trustwatch-server`, `trustwatch-agent`).
///
/// Panics with instructions when it has not been built: a test that cannot
/// find the program it tests must fail, not skip.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("TRUSTWATCH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            // target/<profile>/deps/<test-exe> -> target/<profile>/
            let exe = std::env::current_exe().expect("current_exe");
            let deps = exe.parent().expect("test exe has a parent dir");
            deps.parent().expect("deps dir has a parent").to_path_buf()
        }
    };
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} not found: build the binaries first (cargo build --workspace --bins) or set TRUSTWATCH_BIN_DIR",
        p.display()
    );
    p
}
