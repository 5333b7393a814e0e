-- Erasing a person (POST /v1/people/{id}/erasure) deletes their sign-in
-- account, its sessions and links, and the sessions of developer tokens
-- naming them: the service role may delete those rows, nothing else.
GRANT DELETE ON trellis.accounts, trellis.sessions, trellis.sign_in_links TO trellis_writer;
