/* errors.c - the catalogue. The seeds' messages are copied letter for letter
 * (the stray quote after 5010's text included: it is in the seed). */
#include "errors.h"

#include <string.h>
#include <yajl/yajl_gen.h>

#define V ERR_TYPE_VALIDATION
#define E ERR_TYPE_ERROR

static const struct err_def catalogue[E__COUNT] = {
    [E_NONE] = {E_NONE, 200, "0", E, ""},
    [E_VISIT_CANCELLED] = {E_VISIT_CANCELLED, 200, "2000", E, "Вызов отменен"},

    [E_NO_MKAB_IN_LPU] = {E_NO_MKAB_IN_LPU, 400, "4000", V, "Не найден МКАБ: {guid} в лпу: {lpu}"},
    [E_NO_CARDS] = {E_NO_CARDS, 404, "4001", E,
        "По вашему полису и дате рождения не найдено ни одной медицинской карты."},
    [E_CHILDREN_LPU] = {E_CHILDREN_LPU, 400, "4005", V,
        "Вы пытаетесь записаться в детское учреждение. Запись пациентов старше 18 лет запрещена."},
    [E_SELF_BOOKING_BLOCKED] = {E_SELF_BOOKING_BLOCKED, 400, "4007", V,
        "Вам запрещена самостоятельная запись на прием через интернет или инфомат. Для записи на "
        "прием обратитесь в регистратуру медицинского учреждения лично или по телефону."},
    [E_NOT_ON_DISPENSARY] = {E_NOT_ON_DISPENSARY, 400, "4007", V,
        "Вы не состоите на диспансерном учете у данного специалиста. Запись невозможна."},
    [E_ONE_PER_SPECIALITY] = {E_ONE_PER_SPECIALITY, 400, "4008", V,
        "Вы уже записаны {ФИО} на {Время}. Запрещено иметь более одной активной записи на прием "
        "на одну специальность."},
    [E_CELL_TAKEN] = {E_CELL_TAKEN, 400, "4009", V,
        "Это время уже занято. Выберите другое свободное время приема."},
    [E_AGE_GROUP] = {E_AGE_GROUP, 400, "4029", V,
        "Запись недоступна для данной возрастной группы. Сотрудниками МО было установлено "
        "ограничение по возрасту при записи на прием."},
    [E_DIRECTION_UNKNOWN] = {E_DIRECTION_UNKNOWN, 400, "4031", V,
        "Направление с таким номером не существует, либо принадлежит другому пациенту"},
    [E_DIRECTION_PAIR] = {E_DIRECTION_PAIR, 400, "4033", V,
        "directionID и directionType не могут быть указаны отдельно"},
    [E_TIME_OR_CELL_EMPTY] = {E_TIME_OR_CELL_EMPTY, 400, "4036", V,
        "Время и гвид врача или гвид ячейки расписания не должны быть пустыми"},
    [E_SCHEDULE_PERIOD] = {E_SCHEDULE_PERIOD, 400, "5066", V,
        "Недопустимый период расписания. Максимальный период {N} дней"},
    [E_TOKEN_EXPIRED] = {E_TOKEN_EXPIRED, 403, "5007", E, "Время действия токена истекло"},
    [E_TOKEN_INVALID] = {E_TOKEN_INVALID, 403, "5008", E, "Токен некорректен"},
    [E_TOKEN_SIGNATURE] = {E_TOKEN_SIGNATURE, 403, "5009", E, "Подпись запроса некорректна"},
    [E_TOKEN_MISSING] = {E_TOKEN_MISSING, 403, "5010", E,
        "Запрос должен содержать 'Authorization: Bearer ...'\""},
    [E_CLIENT_APP_UNKNOWN] = {E_CLIENT_APP_UNKNOWN, 403, "5096", E,
        "Клиентское приложение с данным идентификатором не найдено"},
    [E_CARDS_UNAVAILABLE] = {E_CARDS_UNAVAILABLE, 500, "5097", E,
        "Не удалось получить данные о медицинских картах пациента."},

    [E_PARAM_REQUIRED] = {E_PARAM_REQUIRED, 400, "4100", V, "Не указан обязательный параметр {field}"},
    [E_PARAM_FORMAT] = {E_PARAM_FORMAT, 400, "4101", V, "Параметр {field} имеет неверный формат"},
    [E_PARAM_CHECKSUM] = {E_PARAM_CHECKSUM, 400, "4102", V,
        "Параметр {field} не прошёл проверку контрольного числа"},
    [E_PARAM_PAIR] = {E_PARAM_PAIR, 400, "4103", V, "Параметры {field} и {field} указываются только вместе"},
    [E_PARAM_COMBINATION] = {E_PARAM_COMBINATION, 400, "4104", V,
        "Набор параметров не соответствует ни одному способу идентификации пациента"},
    [E_PARAM_UNEXPECTED] = {E_PARAM_UNEXPECTED, 400, "4105", V, "Параметр {field} не поддерживается"},
    [E_PARAM_TOO_MANY] = {E_PARAM_TOO_MANY, 400, "4106", V, "Слишком много параметров в запросе"},
    [E_BODY_JSON] = {E_BODY_JSON, 400, "4110", V, "Тело запроса не является корректным JSON: {reason}"},
    [E_BODY_TOO_LARGE] = {E_BODY_TOO_LARGE, 413, "4113", V, "Тело запроса слишком велико"},
    [E_CONTENT_TYPE] = {E_CONTENT_TYPE, 415, "4115", V, "Тело запроса должно иметь тип application/json"},
    [E_NOT_FOUND] = {E_NOT_FOUND, 404, "4140", E, "Метод не найден"},
    [E_METHOD] = {E_METHOD, 405, "4150", E, "Метод {method} не поддерживается для этого адреса"},
    [E_RATE_LIMITED] = {E_RATE_LIMITED, 429, "4290", E, "Слишком много запросов. Повторите попытку позже."},

    [E_INTERNAL] = {E_INTERNAL, 500, "5000", E, "Внутренняя ошибка сервера"},
    [E_STORE_UNAVAILABLE] = {E_STORE_UNAVAILABLE, 503, "5030", E,
        "Хранилище данных временно недоступно. Повторите попытку позже."},
    [E_OVERLOADED] = {E_OVERLOADED, 503, "5031", E, "Сервис перегружен. Повторите попытку позже."},
    [E_SHUTTING_DOWN] = {E_SHUTTING_DOWN, 503, "5032", E, "Сервис останавливается. Повторите попытку позже."},
};

#undef V
#undef E

const struct err_def *err_get(enum err_id id)
{
    if ((int)id < 0 || id >= E__COUNT)
        id = E_INTERNAL;
    return &catalogue[id];
}

const char *err_type_name(enum err_type t)
{
    return t == ERR_TYPE_VALIDATION ? "Validation" : "Error";
}

void err_message(enum err_id id, const char *const *args, int nargs, struct buf *out)
{
    const char *m = err_get(id)->message;
    int next = 0;
    buf_reset(out);
    while (*m) {
        const char *open = strchr(m, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            buf_puts(out, m);
            break;
        }
        buf_append(out, m, (size_t)(open - m));
        if (next < nargs && args[next])
            buf_puts(out, args[next]);
        next++;
        m = close + 1;
    }
    if (!out->data)
        buf_append(out, "", 0);
}

void err_body(enum err_id id, const char *const *args, int nargs, struct buf *out)
{
    const struct err_def *d = err_get(id);
    struct buf msg;
    buf_init(&msg);
    err_message(id, args, nargs, &msg);

    /* yajl escapes the message: a field name echoed from the request may
     * hold quotes or control characters. */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"Code", 4);
    yajl_gen_integer(g, d->http_status);
    yajl_gen_string(g, (const unsigned char *)"Message_code", 12);
    yajl_gen_string(g, (const unsigned char *)d->code, strlen(d->code));
    yajl_gen_string(g, (const unsigned char *)"Message", 7);
    yajl_gen_string(g, (const unsigned char *)msg.data, msg.len);
    yajl_gen_map_close(g);
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    buf_reset(out);
    buf_append(out, p, n);
    yajl_gen_free(g);
    buf_free(&msg);
}
