//! Background work of a `corral` process: the operations runner, and the
//! reconciler that gives new pods their workload's models; a Modelfile's
//! deploy (`create`) on a pod.

mod create;
pub mod operations;
pub mod reconcile;
