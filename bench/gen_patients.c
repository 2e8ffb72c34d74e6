/* gen_patients.c - a deterministic data set of patients for the benchmark,
 * written as PostgreSQL COPY text (the fastest way in).
 *
 *   gen_patients [-n COUNT] [-s SEED] [-l LPUS] [-m PCT] [-o DIR] [-i FILE]
 *
 *   -n COUNT  persons to write (default 1000000, at most 10000000)
 *   -s SEED   seed of the generator (default 1): the same seed and count
 *             give the same bytes
 *   -l LPUS   bench LPUs the cards are spread over (default 8, at most 99);
 *             their MCODs are 990001, 990002, ...
 *   -m PCT    percent of persons who also have a card at a second LPU, with
 *             the same ЕНП, as in real data (default 10)
 *   -o DIR    writes DIR/lpus.copy, DIR/persons.copy and DIR/cards.copy
 *   -i FILE   writes the identities wrk asks with: one line per person,
 *             "ENP BIRTHDAY" ("9912345678901234 1985-03-14"), in the order
 *             of persons.copy
 *
 * The columns, in order, for the loader's COPY statements:
 *   lpus:          guid, mcod, name
 *   persons:       guid, family, name, patronymic, family_key, name_key,
 *                  patronymic_key, birthday, gender, snils
 *   medical_cards: guid, person_guid, lpu_guid, polis_type, polis_series,
 *                  polis_number, polis_key, polis_start, doc_type,
 *                  doc_series, doc_number, phone
 * (`gen_patients -C` prints them as COPY column lists, one table a line.)
 *
 * Identifiers are valid and never collide with the demo data: every ЕНП
 * starts with region 99 and ends in its Luhn digit; every SNILS starts with
 * 98 and carries its check number; MCODs are 99xxxx. Names are Cyrillic with
 * their fold keys from ids_fold_name (lower case, ё -> е). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ids.h"

#define MAX_COUNT 10000000L
#define MAX_LPUS 99
#define NAME_CAP 128

/* ---- the generator: splitmix64, small and plenty for test data ---- */

static uint64_t rng_state;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the bias of a 64-bit modulo is negligible). */
static uint64_t rng_below(uint64_t n) {
    return rng_next() % n;
}

/* ---- names ---- */

static const char *const SURNAMES[] = {
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
    "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
    "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов",
    "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов",
    "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов",
    "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов",
    "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов",
    "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев",
    "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков",
    "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов",
    "Гаврилов", "Тихонов", "Казаков", "Афанасьев", "Данилов", "Савельев",
    "Тимофеев", "Фомин", "Чернов", "Абрамов", "Мартынов", "Ефимов", "Федотов",
    "Щербаков", "Назаров", "Калинин", "Исаев", "Чернышёв", "Быков", "Маслов",
    "Родионов", "Коновалов", "Лазарев", "Воронин", "Климов", "Филатов",
    "Пономарёв", "Голубев", "Кудрявцев", "Прохоров", "Наумов", "Потапов",
    "Журавлёв", "Овчинников", "Трофимов", "Леонов", "Соболев", "Ермаков",
    "Колесников", "Гончаров", "Емельянов", "Никифоров", "Грачёв", "Котов",
    "Гришин", "Ефремов", "Архипов", "Громов", "Кириллов", "Малышев", "Панов",
    "Моисеев", "Румянцев", "Акимов", "Кондратьев", "Бирюков", "Горбунов",
    "Анисимов", "Ерёмин", "Тихомиров", "Галкин", "Лукьянов", "Михеев", "Скворцов",
    "Юдин", "Белоусов", "Нестеров", "Симонов", "Прокофьев", "Харитонов", "Князев",
    "Цветков", "Левин", "Митрофанов", "Воронцов", "Аксёнов", "Мальцев", "Логинов",
    "Горшков", "Савин", "Краснов", "Майоров", "Демидов", "Елисеев", "Рыбаков",
    "Сафонов", "Плотников", "Дёмин", "Хохлов", "Жданов", "Руденко", "Шевченко",
    "Бондаренко", "Ткаченко", "Кравченко", "Коваленко", "Ким", "Цой",
    "Островский", "Вишневский", "Покровский", "Высоцкий", "Троицкий",
    "Заболоцкий",
};

/* A man's name with the patronymics it gives his son and his daughter. */
static const char *const MALE[][3] = {
    {"Александр", "Александрович", "Александровна"},
    {"Алексей", "Алексеевич", "Алексеевна"},
    {"Андрей", "Андреевич", "Андреевна"},
    {"Антон", "Антонович", "Антоновна"},
    {"Артём", "Артёмович", "Артёмовна"},
    {"Борис", "Борисович", "Борисовна"},
    {"Вадим", "Вадимович", "Вадимовна"},
    {"Валентин", "Валентинович", "Валентиновна"},
    {"Валерий", "Валерьевич", "Валерьевна"},
    {"Василий", "Васильевич", "Васильевна"},
    {"Виктор", "Викторович", "Викторовна"},
    {"Виталий", "Витальевич", "Витальевна"},
    {"Владимир", "Владимирович", "Владимировна"},
    {"Вячеслав", "Вячеславович", "Вячеславовна"},
    {"Геннадий", "Геннадьевич", "Геннадьевна"},
    {"Георгий", "Георгиевич", "Георгиевна"},
    {"Григорий", "Григорьевич", "Григорьевна"},
    {"Денис", "Денисович", "Денисовна"},
    {"Дмитрий", "Дмитриевич", "Дмитриевна"},
    {"Евгений", "Евгеньевич", "Евгеньевна"},
    {"Егор", "Егорович", "Егоровна"},
    {"Иван", "Иванович", "Ивановна"},
    {"Игорь", "Игоревич", "Игоревна"},
    {"Илья", "Ильич", "Ильинична"},
    {"Кирилл", "Кириллович", "Кирилловна"},
    {"Константин", "Константинович", "Константиновна"},
    {"Леонид", "Леонидович", "Леонидовна"},
    {"Максим", "Максимович", "Максимовна"},
    {"Михаил", "Михайлович", "Михайловна"},
    {"Никита", "Никитич", "Никитична"},
    {"Николай", "Николаевич", "Николаевна"},
    {"Олег", "Олегович", "Олеговна"},
    {"Павел", "Павлович", "Павловна"},
    {"Пётр", "Петрович", "Петровна"},
    {"Роман", "Романович", "Романовна"},
    {"Семён", "Семёнович", "Семёновна"},
    {"Сергей", "Сергеевич", "Сергеевна"},
    {"Станислав", "Станиславович", "Станиславовна"},
    {"Степан", "Степанович", "Степановна"},
    {"Тимофей", "Тимофеевич", "Тимофеевна"},
    {"Фёдор", "Фёдорович", "Фёдоровна"},
    {"Юрий", "Юрьевич", "Юрьевна"},
    {"Ярослав", "Ярославович", "Ярославовна"},
};

static const char *const FEMALE[] = {
    "Александра", "Алёна", "Алина", "Анастасия", "Анна", "Валентина", "Валерия",
    "Вера", "Виктория", "Галина", "Дарья", "Евгения", "Екатерина", "Елена",
    "Елизавета", "Ирина", "Карина", "Кристина", "Ксения", "Любовь", "Людмила",
    "Маргарита", "Марина", "Мария", "Надежда", "Наталья", "Нина", "Ольга",
    "Полина", "Светлана", "Софья", "Тамара", "Татьяна", "Ульяна", "Юлия", "Яна",
};

#define N_SURNAMES (sizeof(SURNAMES) / sizeof(SURNAMES[0]))
#define N_MALE (sizeof(MALE) / sizeof(MALE[0]))
#define N_FEMALE (sizeof(FEMALE) / sizeof(FEMALE[0]))

/* A name as written and as folded, with their lengths, ready to copy. */
struct name {
    char text[NAME_CAP];
    char key[NAME_CAP];
    size_t text_len, key_len;
};

/* [0] for men, [1] for women. */
static struct name surname[2][N_SURNAMES];
static struct name first[2][N_MALE > N_FEMALE ? N_MALE : N_FEMALE];
static struct name patronymic[2][N_MALE];

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void name_set(struct name *nm, const char *text) {
    if (snprintf(nm->text, sizeof(nm->text), "%s", text) >= (int)sizeof(nm->text) ||
        !ids_fold_name(nm->text, nm->key, sizeof(nm->key))) {
        fprintf(stderr, "gen_patients: cannot fold \"%s\"\n", text);
        exit(1);
    }
    nm->text_len = strlen(nm->text);
    nm->key_len = strlen(nm->key);
}

/* The feminine form of a surname: Иванов -> Иванова, Островский ->
 * Островская; Шевченко, Ким stay as they are. */
static void feminine(const char *male, char *out, size_t cap) {
    size_t n = strlen(male);

    if (ends_with(male, "ий")) {
        snprintf(out, cap, "%.*sая", (int)(n - strlen("ий")), male);
    } else if (ends_with(male, "ов") || ends_with(male, "ев") || ends_with(male, "ёв") ||
               ends_with(male, "ин") || ends_with(male, "ын")) {
        snprintf(out, cap, "%sа", male);
    } else {
        snprintf(out, cap, "%s", male);
    }
}

static void names_init(void) {
    char buf[NAME_CAP];

    for (size_t i = 0; i < N_SURNAMES; i++) {
        name_set(&surname[0][i], SURNAMES[i]);
        feminine(SURNAMES[i], buf, sizeof(buf));
        name_set(&surname[1][i], buf);
    }
    for (size_t i = 0; i < N_MALE; i++) {
        name_set(&first[0][i], MALE[i][0]);
        name_set(&patronymic[0][i], MALE[i][1]);
        name_set(&patronymic[1][i], MALE[i][2]);
    }
    for (size_t i = 0; i < N_FEMALE; i++)
        name_set(&first[1][i], FEMALE[i]);
}

/* ---- output: a large buffer per file, filled by hand (no printf per row) ---- */

struct out {
    FILE *f;
    char *path;
    char *buf;
    size_t len, cap;
};

/* Takes path over (the caller passes a malloc'd copy). */
static void out_open(struct out *o, char *path) {
    o->path = path;
    o->f = fopen(path, "w");
    if (!o->f) {
        fprintf(stderr, "gen_patients: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    o->cap = 1 << 20;
    o->len = 0;
    o->buf = malloc(o->cap);
    if (!o->buf) {
        fprintf(stderr, "gen_patients: out of memory\n");
        exit(1);
    }
}

static void out_flush(struct out *o) {
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) {
        fprintf(stderr, "gen_patients: %s: %s\n", o->path, strerror(errno));
        exit(1);
    }
    o->len = 0;
}

static void out_close(struct out *o) {
    out_flush(o);
    if (fclose(o->f) != 0) {
        fprintf(stderr, "gen_patients: %s: %s\n", o->path, strerror(errno));
        exit(1);
    }
    free(o->buf);
    free(o->path);
}

/* Room for one row: rows are far shorter than this. */
static char *out_room(struct out *o, size_t n) {
    if (o->cap - o->len < n) out_flush(o);
    return o->buf + o->len;
}

static void out_put(struct out *o, const char *s, size_t n) {
    memcpy(out_room(o, n), s, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s) {
    out_put(o, s, strlen(s));
}

static void out_ch(struct out *o, char c) {
    *out_room(o, 1) = c;
    o->len++;
}

/* n digits of v, zero-padded. */
static void out_digits(struct out *o, uint64_t v, int n) {
    char *p = out_room(o, (size_t)n);

    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    o->len += (size_t)n;
}

static const char HEX[] = "0123456789abcdef";

/* A version-4 GUID from the generator (util_guid is random, not seeded). */
static void make_guid(char out[37]) {
    uint64_t hi = rng_next(), lo = rng_next();
    unsigned char b[16];
    int k = 0;

    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hi >> (56 - 8 * i));
    for (int i = 0; i < 8; i++) b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = HEX[b[i] >> 4];
        out[k++] = HEX[b[i] & 15];
    }
    out[k] = '\0';
}

/* ---- dates ---- */

struct ymd {
    int y, m, d;
};

/* Civil date of a day number (days since 1970-01-01), after H. Hinnant. */
static struct ymd civil(long z) {
    struct ymd r;
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    r.d = (int)(doy - (153 * mp + 2) / 5 + 1);
    r.m = (int)(mp < 10 ? mp + 3 : mp - 9);
    r.y = (int)(yoe + era * 400 + (r.m <= 2));
    return r;
}

static long days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void out_date(struct out *o, struct ymd t) {
    out_digits(o, (uint64_t)t.y, 4);
    out_ch(o, '-');
    out_digits(o, (uint64_t)t.m, 2);
    out_ch(o, '-');
    out_digits(o, (uint64_t)t.d, 2);
}

/* ---- identifiers ---- */

/* The SNILS check number of nine digits, by the rule in ids.h. */
static int snils_check(const char d[9]) {
    int sum = 0;

    for (int i = 0; i < 9; i++) sum += (d[i] - '0') * (9 - i);
    if (sum < 100) return sum;
    if (sum == 100 || sum == 101) return 0;
    sum %= 101;
    return sum == 100 ? 0 : sum;
}

/* A bijection on [0, 10^k): x -> (a*x + b) mod 10^k with a coprime to 10,
 * so that consecutive persons get unrelated-looking, never repeated
 * numbers. */
struct perm {
    uint64_t a, b, mod;
};

static struct perm perm_new(uint64_t mod) {
    struct perm p;

    p.mod = mod;
    do p.a = rng_below(mod);
    while (p.a % 2 == 0 || p.a % 5 == 0);
    p.b = rng_below(mod);
    return p;
}

static uint64_t perm_apply(const struct perm *p, uint64_t x) {
    /* mod <= 10^13 and a, x < 10^13: the product needs 128 bits. */
    return (uint64_t)(((unsigned __int128)p->a * x + p->b) % p->mod);
}

/* ---- main ---- */

static void usage(void) {
    fprintf(stderr,
            "usage: gen_patients [-n COUNT] [-s SEED] [-l LPUS] [-m PCT] [-o DIR] [-i FILE]\n"
            "       gen_patients -C    (prints the COPY column lists)\n");
    exit(2);
}

static const char LPU_COLUMNS[] = "lpus (guid, mcod, name)";
static const char PERSON_COLUMNS[] =
    "persons (guid, family, name, patronymic, family_key, name_key, patronymic_key, "
    "birthday, gender, snils)";
static const char CARD_COLUMNS[] =
    "medical_cards (guid, person_guid, lpu_guid, polis_type, polis_series, polis_number, "
    "polis_key, polis_start, doc_type, doc_series, doc_number, phone)";

static long parse_long(const char *s, long lo, long hi) {
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) usage();
    return v;
}

/* dir/file, or file alone when dir is NULL, in a malloc'd string. */
static char *path_join(const char *dir, const char *file) {
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(file) + 1;
    char *p = malloc(n);

    if (!p) {
        fprintf(stderr, "gen_patients: out of memory\n");
        exit(1);
    }
    snprintf(p, n, "%s%s%s", dir ? dir : "", dir ? "/" : "", file);
    return p;
}

int main(int argc, char **argv) {
    long count = 1000000, nlpus = 8, multi_pct = 10;
    uint64_t seed = 1;
    const char *dir = NULL, *ident_path = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "n:s:l:m:o:i:Ch")) != -1) {
        switch (opt) {
        case 'n': count = parse_long(optarg, 1, MAX_COUNT); break;
        case 's': seed = (uint64_t)parse_long(optarg, 0, 0x7fffffffL); break;
        case 'l': nlpus = parse_long(optarg, 1, MAX_LPUS); break;
        case 'm': multi_pct = parse_long(optarg, 0, 100); break;
        case 'o': dir = optarg; break;
        case 'i': ident_path = optarg; break;
        case 'C':
            printf("%s\n%s\n%s\n", LPU_COLUMNS, PERSON_COLUMNS, CARD_COLUMNS);
            return 0;
        default: usage();
        }
    }
    if (optind != argc || (!dir && !ident_path)) usage();
    if (multi_pct > 0 && nlpus < 2) {
        fprintf(stderr, "gen_patients: -m needs at least two LPUs (-l)\n");
        return 2;
    }

    rng_state = seed * 0x2545f4914f6cdd1dULL + 1;
    names_init();

    /* The identifiers' permutations come first, from the seed alone. */
    struct perm enp_perm = perm_new(10000000000000ULL); /* 13 digits after "99" */
    struct perm snils_perm = perm_new(10000000ULL);     /* 7 digits after "98" */

    char lpu_guid[MAX_LPUS][37];
    for (long i = 0; i < nlpus; i++) make_guid(lpu_guid[i]);

    struct out lpus, persons, cards, ident;

    /* Without -o the rows are still made, and thrown away, so that every
     * draw happens in the same order and -i alone writes the identities
     * that -o would load. */
    if (!dir) {
        out_open(&persons, path_join(NULL, "/dev/null"));
        out_open(&cards, path_join(NULL, "/dev/null"));
    } else {
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "gen_patients: %s: %s\n", dir, strerror(errno));
            return 1;
        }
        out_open(&lpus, path_join(dir, "lpus.copy"));
        out_open(&persons, path_join(dir, "persons.copy"));
        out_open(&cards, path_join(dir, "cards.copy"));
        for (long i = 0; i < nlpus; i++) {
            out_str(&lpus, lpu_guid[i]);
            out_ch(&lpus, '\t');
            out_digits(&lpus, (uint64_t)(990001 + i), 6);
            out_str(&lpus, "\tБенчмарк: городская поликлиника № ");
            out_digits(&lpus, (uint64_t)(i + 1), i + 1 < 10 ? 1 : 2);
            out_ch(&lpus, '\n');
        }
        out_close(&lpus);
    }
    if (ident_path) out_open(&ident, path_join(NULL, ident_path));

    const long day_min = days_from_civil(1930, 1, 1);
    const long day_span = days_from_civil(2023, 12, 31) - day_min + 1;
    const long adult_before = days_from_civil(2009, 1, 1); /* 14 and older: a passport */
    const long polis_min = days_from_civil(2011, 1, 1);
    const long polis_span = days_from_civil(2023, 12, 31) - polis_min + 1;

    for (long i = 0; i < count; i++) {
        char pguid[37], cguid[37], enp[17], snils[12];
        int g = (int)rng_below(2); /* 0: man, 1: woman */
        const struct name *fam = &surname[g][rng_below(N_SURNAMES)];
        const struct name *nam = &first[g][rng_below(g ? N_FEMALE : N_MALE)];
        /* One in twenty has no patronymic (foreign-born, or not given). */
        const struct name *pat = rng_below(20) == 0 ? NULL : &patronymic[g][rng_below(N_MALE)];
        long bday = day_min + (long)rng_below((uint64_t)day_span);
        struct ymd bd = civil(bday);
        bool has_snils = rng_below(10) != 0; /* nine in ten */
        uint64_t v;

        make_guid(pguid);

        /* ЕНП: 99, 13 digits unique to this person, the Luhn digit. */
        memcpy(enp, "99", 2);
        v = perm_apply(&enp_perm, (uint64_t)i);
        for (int k = 14; k >= 2; k--, v /= 10) enp[k] = (char)('0' + v % 10);
        enp[15] = (char)('0' + ids_luhn_digit(enp, 15));
        enp[16] = '\0';

        /* SNILS: 98, 7 digits unique to this person, the check number. The
         * permutation is over 10^7, so up to ten million persons. */
        memcpy(snils, "98", 2);
        v = perm_apply(&snils_perm, (uint64_t)i);
        for (int k = 8; k >= 2; k--, v /= 10) snils[k] = (char)('0' + v % 10);
        {
            int c = snils_check(snils);
            snils[9] = (char)('0' + c / 10);
            snils[10] = (char)('0' + c % 10);
            snils[11] = '\0';
        }

        {
            struct out *o = &persons;

            out_put(o, pguid, 36);
            out_ch(o, '\t');
            out_put(o, fam->text, fam->text_len);
            out_ch(o, '\t');
            out_put(o, nam->text, nam->text_len);
            out_ch(o, '\t');
            if (pat) out_put(o, pat->text, pat->text_len);
            out_ch(o, '\t');
            out_put(o, fam->key, fam->key_len);
            out_ch(o, '\t');
            out_put(o, nam->key, nam->key_len);
            out_ch(o, '\t');
            if (pat) out_put(o, pat->key, pat->key_len);
            out_ch(o, '\t');
            out_date(o, bd);
            out_ch(o, '\t');
            out_ch(o, g ? '2' : '1');
            out_ch(o, '\t');
            if (has_snils)
                out_put(o, snils, 11);
            else
                out_str(o, "\\N");
            out_ch(o, '\n');

            /* The card at the home LPU, and for some a second one. */
            long home = (long)rng_below((uint64_t)nlpus);
            int ncards = rng_below(100) < (uint64_t)multi_pct ? 2 : 1;
            char doc_series[5], doc_number[7], phone[12];
            bool has_doc = bday < adult_before;
            bool has_phone = rng_below(10) < 7;
            long polis_day = polis_min + (long)rng_below((uint64_t)polis_span);
            struct ymd ps = civil(polis_day > bday ? polis_day : bday); /* not before birth */

            v = rng_next();
            for (int k = 3; k >= 0; k--, v /= 10) doc_series[k] = (char)('0' + v % 10);
            /* Series never start with 0: bench/upload_patients' do. */
            if (doc_series[0] == '0')
                doc_series[0] = '1';
            for (int k = 5; k >= 0; k--, v /= 10) doc_number[k] = (char)('0' + v % 10);
            doc_series[4] = doc_number[6] = '\0';
            memcpy(phone, "79", 2);
            for (int k = 10; k >= 2; k--, v /= 10) phone[k] = (char)('0' + v % 10);
            phone[11] = '\0';

            for (int c = 0; c < ncards; c++) {
                long lpu = c == 0 ? home : (home + 1 + (long)rng_below((uint64_t)nlpus - 1)) % nlpus;

                o = &cards;
                make_guid(cguid);
                out_put(o, cguid, 36);
                out_ch(o, '\t');
                out_put(o, pguid, 36);
                out_ch(o, '\t');
                out_put(o, lpu_guid[lpu], 36);
                out_str(o, "\t3\t\t"); /* polis_type 3 (ЕНП), no series */
                out_put(o, enp, 16);
                out_str(o, "\t|");
                out_put(o, enp, 16);
                out_ch(o, '\t');
                out_date(o, ps);
                if (has_doc) {
                    out_str(o, "\t14\t"); /* passport of the Russian Federation */
                    out_put(o, doc_series, 4);
                    out_ch(o, '\t');
                    out_put(o, doc_number, 6);
                } else {
                    out_str(o, "\t\\N\t\\N\t\\N");
                }
                out_ch(o, '\t');
                if (has_phone)
                    out_put(o, phone, 11);
                else
                    out_str(o, "\\N");
                out_ch(o, '\n');
            }
        }
        if (ident_path) {
            out_put(&ident, enp, 16);
            out_ch(&ident, ' ');
            out_date(&ident, bd);
            out_ch(&ident, '\n');
        }
    }

    out_close(&persons);
    out_close(&cards);
    if (ident_path) out_close(&ident);
    return 0;
}
