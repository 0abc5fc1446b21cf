//! White-box model checks of the engine's shared-state structures, run under loom with
//! `RUSTFLAGS="--cfg procession_loom" cargo test -p procession-runtime --lib --release loom_`.

mod loom_future_cell;
mod loom_quiesce;
