"""The reliability and security suite: faults, crashes and hostile input lose nothing and leak nothing."""
