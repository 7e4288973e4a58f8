//! The real models ziglama is tested and demonstrated on, and how to fetch them.
