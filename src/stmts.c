/* stmts.c - see stmts.h. */
#include "stmts.h"

/* The person columns every identity look-up returns, in enum ident_column
 * order. Closed cards are not cards a patient can use. At most 16 persons:
 * an identity that matches more is bad data, not a patient. */
#define IDENT_SELECT \
    "SELECT p.guid::text, to_char(p.birthday, 'YYYY-MM-DD'), p.family_key, p.name_key," \
    " p.patronymic_key, coalesce(p.snils, '')," \
    " coalesce((SELECT string_agg(c.lpu_guid::text || ':' || c.guid::text, ','" \
    "                             ORDER BY c.created_at, c.guid)" \
    "           FROM medical_cards c WHERE c.person_guid = p.guid AND NOT c.is_closed), '')" \
    " FROM persons p "
#define IDENT_ORDER " ORDER BY p.updated_at DESC, p.guid LIMIT 16"

const struct pg_stmt pg_stmts[STMT__COUNT] = {
    [STMT_PING] = {"ping", "SELECT 1", 0},
    [STMT_CLIENT_APPS] = {"client_apps",
        "SELECT guid::text, mnem, is_default FROM client_applications ORDER BY mnem LIMIT 64", 0},
    [STMT_IDENT_BY_POLIS] = {"ident_by_polis",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards WHERE polis_key = $1)"
        IDENT_ORDER, 1},
    [STMT_IDENT_BY_SNILS] = {"ident_by_snils", IDENT_SELECT "WHERE p.snils = $1" IDENT_ORDER, 1},
    [STMT_IDENT_BY_PERSON] = {"ident_by_person", IDENT_SELECT "WHERE p.guid = $1::uuid" IDENT_ORDER, 1},
    [STMT_IDENT_BY_MKAB] = {"ident_by_mkab",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards WHERE guid = $1::uuid)"
        IDENT_ORDER, 1},
    [STMT_IDENT_BY_PASSPORT] = {"ident_by_passport",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards"
        "                     WHERE doc_series = $1 AND doc_number = $2)" IDENT_ORDER, 2},
    [STMT_MIS_LOGIN] = {"mis_login",
        "SELECT u.password_hash, u.is_disabled,"
        "       coalesce(string_agg(l.mcod, ',' ORDER BY l.mcod), '')"
        "  FROM mis_users u LEFT JOIN mis_user_lpus l ON l.login = u.login"
        " WHERE u.login = $1 GROUP BY u.login", 1},
    [STMT_REFDATA_LPUS] = {"refdata_lpus",
        "SELECT refdata_lpus($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_RESOURCES] = {"refdata_resources",
        "SELECT refdata_resources($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_CELLS] = {"refdata_cells",
        "SELECT refdata_cells($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_REFERRALS] = {"refdata_referrals",
        "SELECT refdata_referrals($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_DISPENSARY] = {"refdata_dispensary",
        "SELECT refdata_dispensary($1::jsonb, $2::text[])::text", 2},
    [STMT_PATIENT_UPLOAD] = {"patient_upload",
        "SELECT mip_patient_upload($1::jsonb, $2::text[])::text", 2},
};
