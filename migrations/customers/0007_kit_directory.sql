-- The sales reps now live in the kit's directory_members (role 'sales_rep').
DROP TABLE sales_reps;
