-- Full-text search of class types over name and description
-- (ListClassTypes.query), in the `simple` configuration (no stemming, so
-- English and French alike), lower case and French accents folded as
-- tenancy folds its studios. Two self-contained functions — the indexed
-- document and the query — fold both sides alike; they call built-ins only,
-- so they mean the same whatever the search_path of whoever evaluates them
-- (an index build, a restore, a query).
--
-- An expression index (next migration), not a stored generated column:
-- adding a stored column rewrites the table under an exclusive lock, an
-- index on an expression is built concurrently while class types are
-- written.
CREATE FUNCTION class_type_search(name text, description text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig,
                       translate(lower(name || ' ' || description),
                                 'àâäáãåçéèêëíìîïñóòôöõúùûüýÿ',
                                 'aaaaaaceeeeiiiinooooouuuuyy'))
$$;

-- The query side: `query` is a tsquery already built from words by the
-- service (fitflow_api::search), folded like the document.
CREATE FUNCTION class_type_search_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsquery('simple'::regconfig,
                      translate(lower(query),
                                'àâäáãåçéèêëíìîïñóòôöõúùûüýÿ',
                                'aaaaaaceeeeiiiinooooouuuuyy'))
$$;

-- validate:
-- SELECT class_type_search('Étirements, Yoga', 'Souplesse douce')
--        @@ class_type_search_query('etirem:* & souplesse')
--    AND NOT class_type_search('Strength', '') @@ class_type_search_query('yoga:*');
