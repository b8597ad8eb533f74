//! Background work of a `corral` process: the operations runner.

pub mod operations;
