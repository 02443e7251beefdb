//! The output of a broadcast (DESIGN.md, "The output belongs to the broadcast"): what every
//! target publishes, for as long as the broadcast is desired live, whichever call attempt is
//! current. [`switcher`] decides between the call and the [`slate`] plus [`silence`] and keeps
//! one rising timeline across every switch.

pub mod broadcast;
pub mod preview;
pub mod silence;
pub mod slate;
pub mod switcher;
pub mod targets;

pub use broadcast::{BroadcastOutput, OutputSink};
pub use preview::PreviewHub;
pub use switcher::{Showing, Switcher, SwitcherConfig, SwitcherStats};
