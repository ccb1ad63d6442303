-- Drops team invitations and the policies that let trainers join and leave
-- teams themselves (team_links itself stays: the first migration owns it).
DROP POLICY team_links_leave ON team_links;
DROP POLICY team_links_join ON team_links;
DROP TABLE team_invitations;
