-- Contracts signed or amended in the pipeline (issue 18, P-4): each version is applied to its
-- customer once.
CREATE TABLE applied_contracts (
    contract_id  text    NOT NULL,
    version      integer NOT NULL,
    PRIMARY KEY (contract_id, version)
);
