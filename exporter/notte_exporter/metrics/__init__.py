"""What /metrics says: collectors of a poll's snapshot, and its exposition rendered once."""
