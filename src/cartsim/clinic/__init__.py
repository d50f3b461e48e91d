"""The clinician's rules: pure grading and response functions over arrays or records."""
