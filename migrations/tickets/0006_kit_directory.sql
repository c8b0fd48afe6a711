-- The engineers now live in the kit's directory_members (role 'engineer'), kept the same way by
-- every service that needs a role's members.
DROP TABLE engineers;
