"""Admins: sign-ups, users, courses and quotas, images, hosts, the audit log, every instance."""
