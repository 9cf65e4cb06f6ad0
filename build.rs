//! Records the git commit of the filter's code (the last commit that changed what the `.wasm`
//! is built from); `on_vm_start` logs it.
//!
//! Not `HEAD`: a commit that changes only docs or tests would otherwise give the same code a
//! different `.wasm` (the id is in its data), and `make bench` compares its two `.wasm` files
//! by SHA-256 to know whether `make bench-profile` counted the same code.
use std::process::Command;

/// What the `.wasm` is built from.
const CODE: &[&str] = &[
    "src",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "rust-toolchain.toml",
];

fn main() {
    let hash = Command::new("git")
        .args(["log", "-1", "--abbrev=12", "--format=%h", "--"])
        .args(CODE)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=AI_GATEWAY_GIT_HASH={hash}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
