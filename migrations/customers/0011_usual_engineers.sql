-- The customers' usual engineers as the tickets service keeps them (its
-- tickets.usual_engineer_changed events), for the service policy status (C-8). Until now the
-- status showed the tech-support partner, who is no engineer (issue 14).
CREATE TABLE usual_engineers (
    customer_id  uuid        PRIMARY KEY,
    engineer_id  text        NOT NULL,
    update_time  timestamptz NOT NULL
);
