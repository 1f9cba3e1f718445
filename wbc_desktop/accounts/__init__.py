"""Local user accounts for electronic signatures (21 CFR Part 11 §11.100, 11.200, 11.300): a unique ID per
person, never reused or deleted, and a password stored only as an Argon2id hash (argon2-cffi)."""
