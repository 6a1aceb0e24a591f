//! The `meshgate` command; see `meshgate help`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(meshgate::cli::main(std::env::args().collect()));
}

#[cfg(target_arch = "wasm32")]
fn main() {}
