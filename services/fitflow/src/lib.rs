//! The FitFlow binary's library: settings from the environment, the stack
//! that hosts any set of services in one process, and operator commands.

pub mod audit_ops;
pub mod bench;
pub mod ops;
pub mod services;
pub mod settings;
pub mod stack;

pub use services::ServiceName;
pub use settings::Settings;
pub use stack::Stack;
