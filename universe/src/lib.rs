//! Universe repository tooling: `validate`, `build`, `serve`, `mirror`, `diff`.
//!
//! * [`source`]: reading a package tree from a folder or a git tree;
//! * [`build`]: the index files upstream `gen_universe.py` writes;
//! * [`validate`]: upstream rules + default options + rendering;
//! * [`serve`]: the repository server (`serve::router(dir)` for in-process use);
//! * [`mirror`]: offline, self-contained repositories with their artifacts.

pub mod build;
pub mod git;
pub mod mirror;
pub mod render;
pub mod serve;
pub mod source;
pub mod validate;
