//! Exit codes, in one place.

/// How `phoenix` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: succeeded.
    Ok,
    /// 1: the run failed (or the command could not do its work).
    Failed,
    /// 2: bad input; nothing ran.
    BadInput,
    /// 3: the run halted and can be resumed.
    Halted,
    /// 130: interrupted by Ctrl-C after the checkpoint was written.
    Interrupted,
}

impl Exit {
    pub(crate) fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::BadInput => 2,
            Exit::Halted => 3,
            Exit::Interrupted => 130,
        }
    }
}
