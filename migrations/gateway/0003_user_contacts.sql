-- How to reach a user with notifications (announced to the notifications service by events).
ALTER TABLE users
    ADD COLUMN email    text NOT NULL DEFAULT '',
    ADD COLUMN phone    text NOT NULL DEFAULT '',
    ADD COLUMN language text NOT NULL DEFAULT 'zh';
