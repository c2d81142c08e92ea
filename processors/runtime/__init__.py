"""What every processor shares: records in and out, CloudEvents headers, dead letters, the Quix app."""
