-- The users of the roles a service acts on, as the gateway announces them (gateway.user_changed):
-- engineers for the tickets service's dispatch, sales reps for the customers service's
-- assignment. A member who loses the role stays, inactive.
CREATE TABLE directory_members (
    user_id      text        NOT NULL,
    role         text        NOT NULL,
    region       text        NOT NULL,
    active       boolean     NOT NULL,
    update_time  timestamptz NOT NULL,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX directory_members_region ON directory_members (role, region, user_id) WHERE active;
