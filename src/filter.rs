//! Per-request state machine.
