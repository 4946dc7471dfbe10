//! timer_wheel (in progress).
