//! Background work of a `corral` process: the operations runner, and the
//! reconciler that gives new pods their workload's models.

pub mod operations;
pub mod reconcile;
