//! Generating the population, organisations and their relations.

use std::collections::HashSet;

use fastrand::Rng;

use super::{
    between, chance, checks, pick, Address, Capital, City, Couple, Currency, Date, DocKind, Document, Family, Holding,
    Job, Org, OrgKind, OrgStatus, Party, Person, PersonName, Sex, Trade, TODAY,
};

const SURNAMES: [&str; 100] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于",
    "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆",
    "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛",
    "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武",
    "戴", "莫", "孔", "欧阳", "司马",
];
const MALE_GIVEN: [&str; 40] = [
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "宁",
    "浩", "凯", "健", "俊", "帆", "帅", "旭", "宇", "林", "峰", "建", "国", "志", "文", "东", "海", "龙", "成", "庆",
    "亮", "新",
];
const FEMALE_GIVEN: [&str; 36] = [
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "燕", "玲", "桂", "丹", "萍", "红", "梅", "琳", "婷", "雪",
    "慧", "莉", "颖", "倩", "晶", "洁", "欣", "怡", "佳", "悦", "兰", "凤", "云", "英", "玉", "琴", "蕾",
];
/// Uyghur given names and father's names, written in Chinese transliteration.
const MINORITY_MALE: [&str; 8] = [
    "阿卜杜拉",
    "买买提",
    "艾力",
    "吐尔逊",
    "艾买提",
    "司马义",
    "努尔",
    "依明",
];
const MINORITY_FEMALE: [&str; 6] = ["古丽", "热依拉", "迪丽努尔", "帕提古丽", "阿依古丽", "米热"];
/// Family name, given names, nationality, passport prefix.
const FOREIGNERS: [(&str, &[&str], &str, &str); 8] = [
    ("KIM", &["MIN JUN", "JI WOO", "SEO YEON"], "KOR", "M"),
    ("PARK", &["JI HOON", "HYE JIN"], "KOR", "M"),
    ("TANAKA", &["HIROSHI", "YUKI"], "JPN", "TK"),
    ("SMITH", &["JOHN", "EMMA", "DAVID"], "USA", "5"),
    ("BROWN", &["JAMES", "OLIVIA"], "GBR", "1"),
    ("IVANOV", &["IVAN", "OLGA"], "RUS", "75"),
    ("MUELLER", &["THOMAS", "ANNA"], "DEU", "C"),
    ("NGUYEN", &["VAN AN", "THI MAI"], "VNM", "C"),
];
const HK_MACAO: [(&str, &str); 4] = [
    ("CHAN", "TAI MAN"),
    ("WONG", "KA YAN"),
    ("LEUNG", "CHI KEUNG"),
    ("CHEONG", "WENG IO"),
];
const TAIWAN: [(&str, &str); 3] = [("LIN", "CHIH MING"), ("CHEN", "YI HSUAN"), ("HUANG", "CHUN HSIEN")];

/// Districts of Yantai other than Haiyang.
const YANTAI: [&str; 10] = [
    "370602", "370611", "370612", "370613", "370681", "370682", "370683", "370684", "370685", "370686",
];
/// Places elsewhere in China.
const ELSEWHERE: [&str; 10] = [
    "370102", "370202", "370303", "371002", "110105", "310115", "410102", "230103", "220102", "130102",
];
const XINJIANG: [&str; 3] = ["650102", "650104", "653101"];

const SUBDISTRICTS: [&str; 3] = ["东村街道", "方圆街道", "凤城街道"];
const TOWNS: [&str; 10] = [
    "留格庄镇",
    "盘石店镇",
    "郭城镇",
    "徐家店镇",
    "发城镇",
    "小纪镇",
    "行村镇",
    "辛安镇",
    "二十里店镇",
    "朱吴镇",
];
const STREETS: [&str; 10] = [
    "海阳路",
    "海政路",
    "榆山路",
    "海河路",
    "黄海路",
    "海天路",
    "海滨路",
    "东村路",
    "凤凰路",
    "方圆路",
];
const VILLAGES: [&str; 12] = [
    "东庄",
    "西庄",
    "南河",
    "北山",
    "郭家",
    "王家",
    "河头",
    "沙埠",
    "石门",
    "林泉",
    "大辛家",
    "前庄",
];
const MOBILE_PREFIXES: [&str; 24] = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157", "158", "159",
    "166", "177", "180", "182", "186", "187", "188", "199",
];

const BRANDS: [&str; 40] = [
    "海润", "金沙", "鑫源", "恒达", "华宇", "瑞祥", "永泰", "东升", "泰丰", "宏业", "德润", "福瑞", "万通", "盛世",
    "龙腾", "天元", "博远", "嘉禾", "康源", "美达", "富海", "锦程", "祥和", "兴隆", "安泰", "和顺", "聚福", "昊天",
    "晨光", "明珠", "凯旋", "远航", "阳光", "青山", "碧海", "银河", "金帆", "丰源", "润泽", "海纳",
];
/// Industry word and GB/T 4754 class for ordinary companies.
const INDUSTRIES: [(&str, &str); 11] = [
    ("食品", "1499"),
    ("水产", "1361"),
    ("纺织", "1711"),
    ("物流", "5990"),
    ("商贸", "5199"),
    ("电子科技", "3989"),
    ("机械制造", "3499"),
    ("化工", "2619"),
    ("服装", "1811"),
    ("建材", "3039"),
    ("果蔬", "0141"),
];
const SHOPS: [&str; 10] = [
    "便利店",
    "小吃店",
    "五金店",
    "理发店",
    "超市",
    "饭店",
    "水果店",
    "建材店",
    "汽修部",
    "服装店",
];
const COOP_PRODUCTS: [&str; 5] = ["果蔬种植", "苹果种植", "花生种植", "畜禽养殖", "海水养殖"];
/// Where builders and supervisors from other cities are registered, and the city's name.
const OTHER_CITIES: [(&str, &str); 6] = [
    ("370602", "烟台"),
    ("370202", "青岛"),
    ("370102", "济南"),
    ("310115", "上海"),
    ("110105", "北京"),
    ("230103", "哈尔滨"),
];
/// Letters allowed in organisation codes issued as part of a credit code.
const CODE_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

pub(super) fn generate(people: usize, rng: &mut Rng) -> City {
    let mut registry = Registry {
        ids: HashSet::new(),
        codes: HashSet::new(),
        names: HashSet::new(),
    };
    let mut persons = Vec::with_capacity(people);
    let mut families = Vec::new();
    while persons.len() < people {
        let first = families.is_empty();
        if let Some(family) = family(rng, &mut registry, &mut persons, people, first) {
            families.push(family);
        }
    }
    let orgs = organisations(rng, &mut registry, &persons, people);
    let couples = couples(rng, &persons, &families);
    let jobs = jobs(rng, &persons, &orgs);
    let holdings = holdings(rng, &persons, &families, &couples, &orgs);
    City {
        persons,
        orgs,
        families,
        couples,
        jobs,
        holdings,
    }
}

/// Numbers and names already given out, to keep them unique.
struct Registry {
    ids: HashSet<String>,
    codes: HashSet<String>,
    names: HashSet<String>,
}

/// Where a person comes from, which decides the document and the name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Haiyang,
    Yantai,
    Elsewhere,
    Uyghur,
    Foreign,
    HkMacao,
    Taiwan,
    PermanentResident,
}

fn adult_origin(rng: &mut Rng) -> Origin {
    match rng.u16(..1000) {
        0..=19 => Origin::Foreign,
        20..=29 => Origin::HkMacao,
        30..=34 => Origin::Taiwan,
        35..=39 => Origin::PermanentResident,
        40..=64 => Origin::Uyghur,
        65..=184 => Origin::Elsewhere,
        185..=399 => Origin::Yantai,
        _ => Origin::Haiyang,
    }
}

/// A household: a head, perhaps a spouse, children and an elderly parent. `None`
/// only if the population is already complete.
fn family(
    rng: &mut Rng,
    registry: &mut Registry,
    persons: &mut Vec<Person>,
    limit: usize,
    first: bool,
) -> Option<Family> {
    let home = random_address(rng);
    let head_sex = if rng.bool() { Sex::Male } else { Sex::Female };
    let head_birth = Date::between(rng, Date::new(1940, 1, 1), Date::new(2002, 12, 31));
    let head_origin = adult_origin(rng);
    let head = add(
        persons,
        limit,
        new_person(rng, registry, head_sex, head_birth, head_origin, None, &home),
    )?;
    // The first family is always a couple, so that even a tiny city has a marriage.
    let married = first || (head_birth.age_on(TODAY) >= 24 && chance(rng, 0.72));
    let mut spouse = None;
    if married {
        let sex = if head_sex == Sex::Male { Sex::Female } else { Sex::Male };
        let birth = head_birth
            .plus_days(between(rng, -6 * 365, 6 * 365))
            .min(Date::new(2002, 12, 31));
        // Foreign heads mostly married locally; most spouses are from around here.
        let origin = if chance(rng, 0.6) {
            Origin::Haiyang
        } else {
            adult_origin(rng)
        };
        spouse = add(
            persons,
            limit,
            new_person(rng, registry, sex, birth, origin, None, &home),
        );
    }
    let mut children = Vec::new();
    if let Some(spouse_index) = spouse {
        let father = if head_sex == Sex::Male { head } else { spouse_index };
        let spouse_birth = persons.get(spouse_index).map_or(head_birth, |p| p.birth);
        let mother_birth = if head_sex == Sex::Female {
            head_birth
        } else {
            spouse_birth
        };
        let count = pick(rng, &[0, 1, 1, 1, 2, 2, 3], 1);
        for _ in 0..count {
            let birth = mother_birth.plus_years(22).plus_days(between(rng, 0, 16 * 365));
            if birth > TODAY {
                continue;
            }
            let surname = family_surname(persons, father);
            let sex = if rng.bool() { Sex::Male } else { Sex::Female };
            let origin = if birth.year >= 1996 {
                Origin::Haiyang
            } else {
                Origin::Yantai
            };
            let child = new_person(rng, registry, sex, birth, origin, surname.as_deref(), &home);
            match add(persons, limit, child) {
                Some(index) => children.push(index),
                None => break,
            }
        }
    }
    let mut parents = Vec::new();
    if head_birth.year >= 1965 && chance(rng, 0.06) {
        let birth = head_birth.plus_years(-between(rng, 24, 34) as i32);
        let sex = if rng.bool() { Sex::Male } else { Sex::Female };
        let surname = if sex == Sex::Male {
            family_surname(persons, head)
        } else {
            None
        };
        let parent = new_person(rng, registry, sex, birth, Origin::Haiyang, surname.as_deref(), &home);
        parents.extend(add(persons, limit, parent));
    }
    Some(Family {
        head,
        spouse,
        children,
        parents,
    })
}

fn add(persons: &mut Vec<Person>, limit: usize, person: Person) -> Option<usize> {
    if persons.len() >= limit {
        return None;
    }
    persons.push(person);
    Some(persons.len() - 1)
}

/// The surname children inherit, if the father has a Chinese name.
fn family_surname(persons: &[Person], father: usize) -> Option<String> {
    match persons.get(father).map(|p| &p.name) {
        Some(PersonName::Chinese { surname, .. }) => Some(surname.clone()),
        _ => None,
    }
}

fn new_person(
    rng: &mut Rng,
    registry: &mut Registry,
    sex: Sex,
    birth: Date,
    origin: Origin,
    surname: Option<&str>,
    home: &Address,
) -> Person {
    let (name, nationality, document) = match origin {
        Origin::Foreign => foreigner(rng),
        Origin::HkMacao => {
            let (family, given) = pick(rng, &HK_MACAO, ("CHAN", "TAI MAN"));
            let prefix = if family == "CHEONG" { "M" } else { "H" };
            let number = format!("{prefix}{}", super::digits(rng, 8));
            (
                latin(family, given),
                "CHN",
                Some(Document {
                    kind: DocKind::HkMacaoPermit,
                    number,
                }),
            )
        }
        Origin::Taiwan => {
            let (family, given) = pick(rng, &TAIWAN, ("LIN", "CHIH MING"));
            let number = super::digits(rng, 8);
            (
                latin(family, given),
                "CHN",
                Some(Document {
                    kind: DocKind::TaiwanPermit,
                    number,
                }),
            )
        }
        Origin::PermanentResident => {
            let (family, givens, nationality, _) = pick(rng, &FOREIGNERS, FOREIGNERS[0]);
            let given = pick(rng, givens, "JOHN");
            // The 15-character card of 2004: nationality, region, birth date, sequence.
            let yymmdd: String = birth.compact().chars().skip(2).collect();
            let number = format!("{nationality}3706{yymmdd}{}", super::digits(rng, 2));
            (
                latin(family, given),
                nationality,
                Some(Document {
                    kind: DocKind::PermanentResidentCard,
                    number,
                }),
            )
        }
        Origin::Uyghur => {
            let region = pick(rng, &XINJIANG, "650102");
            let given = if sex == Sex::Male {
                &MINORITY_MALE[..]
            } else {
                &MINORITY_FEMALE[..]
            };
            let parts = vec![
                pick(rng, given, "古丽").to_owned(),
                pick(rng, &MINORITY_MALE, "买买提").to_owned(),
            ];
            let number = issue_id(rng, registry, region, birth, sex);
            (PersonName::Minority { parts }, "CHN", Some(resident(number)))
        }
        Origin::Haiyang | Origin::Yantai | Origin::Elsewhere => {
            let region = region_code(rng, origin, birth);
            let name = chinese_name(rng, sex, surname);
            // Births are registered within weeks to months: some infants have no number yet.
            let registered = TODAY.days() - birth.days() > 365 || chance(rng, 0.5);
            let document = registered.then(|| resident(issue_id(rng, registry, region, birth, sex)));
            (name, "CHN", document)
        }
    };
    let ethnicity = match origin {
        Origin::Uyghur => "05",
        Origin::Foreign | Origin::PermanentResident => "",
        _ => pick(
            rng,
            &[
                "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "01", "03", "04", "10",
            ],
            "01",
        ),
    };
    let mobile = mobile_number(rng);
    Person {
        name,
        sex,
        birth,
        document,
        nationality,
        ethnicity,
        mobile,
        address: home.clone(),
    }
}

fn resident(number: String) -> Document {
    Document {
        kind: DocKind::ResidentCard,
        number,
    }
}

fn latin(family: &str, given: &str) -> PersonName {
    PersonName::Latin {
        family: family.to_owned(),
        given: given.to_owned(),
    }
}

fn foreigner(rng: &mut Rng) -> (PersonName, &'static str, Option<Document>) {
    let (family, givens, nationality, prefix) = pick(rng, &FOREIGNERS, FOREIGNERS[0]);
    let given = pick(rng, givens, "JOHN");
    let number = format!("{prefix}{}", super::digits(rng, 9 - prefix.len().min(2)));
    (
        latin(family, given),
        nationality,
        Some(Document {
            kind: DocKind::Passport,
            number,
        }),
    )
}

/// Region code of first registration: Haiyang has been 370687 since 1996; people
/// registered there earlier keep 370629 (海阳县).
fn region_code(rng: &mut Rng, origin: Origin, birth: Date) -> &'static str {
    match origin {
        Origin::Haiyang if birth.year >= 1996 => "370687",
        Origin::Haiyang => "370629",
        Origin::Yantai => pick(rng, &YANTAI, "370602"),
        _ => pick(rng, &ELSEWHERE, "370102"),
    }
}

fn chinese_name(rng: &mut Rng, sex: Sex, surname: Option<&str>) -> PersonName {
    let surname = surname.map_or_else(|| pick(rng, &SURNAMES, "王").to_owned(), str::to_owned);
    let pool = if sex == Sex::Male {
        &MALE_GIVEN[..]
    } else {
        &FEMALE_GIVEN[..]
    };
    let mut given = pick(rng, pool, "明").to_owned();
    if chance(rng, 0.65) {
        given.push_str(pick(rng, pool, "华"));
    }
    PersonName::Chinese { surname, given }
}

/// An unused resident identity number: region, birth date, a sequence whose
/// parity is the sex (odd for men), and the GB 11643 check character.
fn issue_id(rng: &mut Rng, registry: &mut Registry, region: &str, birth: Date, sex: Sex) -> String {
    let mut number = String::new();
    for _ in 0..50 {
        let sequence = rng.u32(..500) * 2 + u32::from(sex == Sex::Male);
        let body = format!("{region}{}{sequence:03}", birth.compact());
        let check = checks::gb11643(&body).unwrap_or('0');
        number = format!("{body}{check}");
        if registry.ids.insert(number.clone()) {
            break;
        }
    }
    number
}

pub(crate) fn mobile_number(rng: &mut Rng) -> String {
    format!("{}{}", pick(rng, &MOBILE_PREFIXES, "138"), super::digits(rng, 8))
}

pub(crate) fn random_address(rng: &mut Rng) -> Address {
    if chance(rng, 0.45) {
        let flat = chance(rng, 0.5).then(|| {
            format!(
                "{}号楼{}单元{}0{}室",
                rng.u8(1..=20),
                rng.u8(1..=4),
                rng.u8(1..=18),
                rng.u8(1..=4)
            )
        });
        Address {
            town: pick(rng, &SUBDISTRICTS, "凤城街道"),
            place: pick(rng, &STREETS, "海阳路").to_owned(),
            number: rng.u32(1..=300),
            flat,
        }
    } else {
        Address {
            town: pick(rng, &TOWNS, "郭城镇"),
            place: format!("{}村", pick(rng, &VILLAGES, "东庄")),
            number: rng.u32(1..=200),
            flat: None,
        }
    }
}

// -- organisations -----------------------------------------------------

fn organisations(rng: &mut Rng, registry: &mut Registry, persons: &[Person], people: usize) -> Vec<Org> {
    // Legal representatives: adults with a document.
    let reps: Vec<usize> = persons
        .iter()
        .enumerate()
        .filter(|(_, p)| p.age_on(TODAY) >= 22 && p.document.is_some())
        .map(|(i, _)| i)
        .collect();
    if reps.is_empty() {
        return Vec::new();
    }
    let local = (people / 7).max(6);
    let outside = (people / 50).max(2);
    let mut orgs = Vec::with_capacity(local + outside);
    for i in 0..local {
        // The first three make every city able to issue a construction permit.
        let (kind, trade) = match i {
            0 => (OrgKind::Company, Trade::Developer),
            1 => (OrgKind::Company, Trade::Builder),
            2 => (OrgKind::Company, Trade::Supervisor),
            _ => random_kind_and_trade(rng),
        };
        orgs.push(organisation(rng, registry, persons, &reps, kind, trade, None));
    }
    for i in 0..outside {
        let trade = if i % 2 == 0 { Trade::Builder } else { Trade::Supervisor };
        let city = pick(rng, &OTHER_CITIES, OTHER_CITIES[0]);
        orgs.push(organisation(
            rng,
            registry,
            persons,
            &reps,
            OrgKind::Company,
            trade,
            Some(city),
        ));
    }
    orgs
}

fn random_kind_and_trade(rng: &mut Rng) -> (OrgKind, Trade) {
    match rng.u8(..100) {
        0..=7 => (OrgKind::Company, Trade::Developer),
        8..=14 => (OrgKind::Company, Trade::Builder),
        15..=18 => (OrgKind::Company, Trade::Supervisor),
        19..=49 => (OrgKind::Company, Trade::Other),
        50..=59 => (OrgKind::JointStock, Trade::Other),
        60..=69 => (OrgKind::Cooperative, Trade::Other),
        _ => (OrgKind::IndividualBusiness, Trade::Other),
    }
}

fn organisation(
    rng: &mut Rng,
    registry: &mut Registry,
    persons: &[Person],
    reps: &[usize],
    kind: OrgKind,
    trade: Trade,
    elsewhere: Option<(&'static str, &'static str)>,
) -> Org {
    let (region, city) = elsewhere.unwrap_or(("370687", "海阳"));
    let (industry, industry_code) = match trade {
        Trade::Developer => ("房地产开发", "7010"),
        Trade::Builder => ("建筑工程", "4710"),
        Trade::Supervisor => ("工程监理", "7481"),
        Trade::Other => pick(rng, &INDUSTRIES, INDUSTRIES[0]),
    };
    let (brand, name) = org_name(rng, registry, kind, city, industry);
    let earliest = if kind == OrgKind::IndividualBusiness {
        2000
    } else {
        1995
    };
    let founded = Date::between(rng, Date::new(earliest, 1, 1), TODAY.plus_days(-60));
    let before_2015 = founded < Date::new(2015, 1, 1);
    let org_code = org_code(rng, registry, before_2015);
    // Old individual businesses that never re-registered have no credit code.
    let uscc = (!(kind == OrgKind::IndividualBusiness && before_2015 && chance(rng, 0.4)))
        .then(|| credit_code(kind, region, &org_code));
    let reg_no = before_2015.then(|| registration_number(rng, registry, region, kind));
    let legal_rep = pick_rep(rng, persons, reps, founded);
    Org {
        name,
        brand,
        kind,
        trade,
        industry,
        industry_code,
        region,
        local: elsewhere.is_none(),
        org_code,
        uscc,
        reg_no,
        founded,
        status: status(rng, founded),
        legal_rep,
        capital: capital(rng, kind),
        address: random_address(rng),
        phone: format!(
            "{}{}",
            pick(rng, &['3', '3', '3', '6', '8'], '3'),
            super::digits(rng, 6)
        ),
    }
}

fn org_name(rng: &mut Rng, registry: &mut Registry, kind: OrgKind, city: &str, industry: &str) -> (String, String) {
    let mut result = (String::new(), String::new());
    for attempt in 0..60 {
        let brand = pick(rng, &BRANDS, "海润").to_owned();
        let name = match kind {
            OrgKind::Company if chance(rng, 0.15) => format!("{city}{brand}（集团）{industry}有限公司"),
            OrgKind::Company => format!("{city}{brand}{industry}有限公司"),
            OrgKind::JointStock => format!("{city}{brand}{industry}股份有限公司"),
            OrgKind::Cooperative => format!("{city}市{brand}{}专业合作社", pick(rng, &COOP_PRODUCTS, "果蔬种植")),
            OrgKind::IndividualBusiness => format!("{city}市{brand}{}", pick(rng, &SHOPS, "便利店")),
        };
        // Past a few collisions, a second word makes the name unique.
        let name = if attempt > 20 {
            name.replacen(&brand, &format!("{brand}{}", pick(rng, &BRANDS, "金沙")), 1)
        } else {
            name
        };
        if registry.names.insert(name.clone()) {
            result = (brand, name);
            break;
        }
        result = (brand, name);
    }
    result
}

/// A new GB 11714 organisation code: 8 digits before 2015; codes assigned inside a
/// credit code since then start with MA.
fn org_code(rng: &mut Rng, registry: &mut Registry, before_2015: bool) -> String {
    let mut code = String::new();
    for _ in 0..50 {
        let body: String = if before_2015 {
            format!("{}{}", rng.u8(1..=7), super::digits(rng, 7))
        } else {
            let tail: String = (0..6).map(|_| char::from(pick(rng, CODE_CHARS, b'0'))).collect();
            format!("MA{tail}")
        };
        code = format!("{body}{}", checks::gb11714(&body).unwrap_or('0'));
        if registry.codes.insert(code.clone()) {
            break;
        }
    }
    code
}

/// GB 32100 credit code: authority 9 (market supervision), category by kind,
/// region, organisation code, check character.
fn credit_code(kind: OrgKind, region: &str, org_code: &str) -> String {
    let category = match kind {
        OrgKind::Company | OrgKind::JointStock => '1',
        OrgKind::IndividualBusiness => '2',
        OrgKind::Cooperative => '3',
    };
    let body = format!("9{category}{region}{org_code}");
    format!("{body}{}", checks::gb32100(&body).unwrap_or('0'))
}

/// The pre-2015 registration number: region, a type digit, sequence, MOD 11,10 check.
/// Unique, as the register hands them out.
fn registration_number(rng: &mut Rng, registry: &mut Registry, region: &str, kind: OrgKind) -> String {
    let kind_digit = if kind == OrgKind::IndividualBusiness { '6' } else { '0' };
    let mut number = String::new();
    for _ in 0..50 {
        let body = format!("{region}{kind_digit}{}", super::digits(rng, 7));
        number = format!("{body}{}", checks::mod11_10(&body).unwrap_or('0'));
        if registry.codes.insert(number.clone()) {
            break;
        }
    }
    number
}

fn pick_rep(rng: &mut Rng, persons: &[Person], reps: &[usize], founded: Date) -> usize {
    let mut chosen = pick(rng, reps, 0);
    for _ in 0..20 {
        // Someone who was at least 20 when the organisation was founded, if possible.
        if persons.get(chosen).is_some_and(|p| p.age_on(founded) >= 20) {
            break;
        }
        chosen = pick(rng, reps, 0);
    }
    chosen
}

fn status(rng: &mut Rng, founded: Date) -> OrgStatus {
    if founded > Date::new(2023, 1, 1) {
        return OrgStatus::Active;
    }
    match rng.u8(..100) {
        0..=7 => OrgStatus::Deregistered,
        8..=10 => OrgStatus::Revoked,
        11..=12 => OrgStatus::MovedOut,
        _ => OrgStatus::Active,
    }
}

fn capital(rng: &mut Rng, kind: OrgKind) -> Option<Capital> {
    let (amounts, currency): (&[u32], Currency) = match kind {
        OrgKind::IndividualBusiness => return None,
        OrgKind::Company if chance(rng, 0.08) => (&[20, 50, 100, 300], Currency::Dollar),
        OrgKind::Company => (&[10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000], Currency::Yuan),
        OrgKind::JointStock => (&[1000, 2000, 5000, 8000, 10000], Currency::Yuan),
        OrgKind::Cooperative => (&[10, 20, 50, 100, 200], Currency::Yuan),
    };
    Some(Capital {
        wan: pick(rng, amounts, 100),
        currency,
    })
}

// -- relations -------------------------------------------------------

fn couples(rng: &mut Rng, persons: &[Person], families: &[Family]) -> Vec<Couple> {
    let mut couples = Vec::new();
    for family in families {
        let Some(spouse) = family.spouse else { continue };
        let (Some(a), Some(b)) = (persons.get(family.head), persons.get(spouse)) else {
            continue;
        };
        let ((husband, h), (wife, w)) = if a.sex == Sex::Male {
            ((family.head, a), (spouse, b))
        } else {
            ((spouse, b), (family.head, a))
        };
        let earliest = h.birth.plus_years(22).max(w.birth.plus_years(20));
        let first_child = family
            .children
            .iter()
            .filter_map(|&c| persons.get(c))
            .map(|c| c.birth)
            .min();
        let latest = first_child.map_or(TODAY, |d| d.plus_days(-200)).min(TODAY);
        let married = Date::between(rng, earliest, latest).min(TODAY);
        let divorced = (married < TODAY.plus_years(-3) && chance(rng, 0.08))
            .then(|| Date::between(rng, married.plus_years(1), TODAY));
        couples.push(Couple {
            husband,
            wife,
            married,
            divorced,
        });
    }
    couples
}

fn jobs(rng: &mut Rng, persons: &[Person], orgs: &[Org]) -> Vec<Job> {
    // Individual businesses rarely register employees: one in three does.
    let employers: Vec<usize> = orgs
        .iter()
        .enumerate()
        .filter(|(i, o)| o.local && (o.kind != OrgKind::IndividualBusiness || i % 3 == 0))
        .map(|(i, _)| i)
        .collect();
    let mut jobs = Vec::new();
    if employers.is_empty() {
        return jobs;
    }
    for (index, person) in persons.iter().enumerate() {
        let age = person.age_on(TODAY);
        if !(18..=75).contains(&age) || person.document.is_none() || !chance(rng, 0.75) {
            continue;
        }
        let adult = person.birth.plus_years(18);
        let current_org = pick(rng, &employers, 0);
        let Some(employer) = orgs.get(current_org) else {
            continue;
        };
        let start = job_start(rng, employer, adult);
        let retired = age > 60;
        let active = employer.status == OrgStatus::Active;
        // Some people changed employer: an earlier job at another organisation.
        if chance(rng, 0.12) {
            let previous = pick(rng, &employers, 0);
            if let (true, Some(earlier_employer)) = (previous != current_org, orgs.get(previous)) {
                let earlier = job_start(rng, earlier_employer, adult).min(start.plus_days(-90));
                if earlier >= adult {
                    jobs.push(Job {
                        person: index,
                        org: previous,
                        start: earlier,
                        current: false,
                    });
                }
            }
        }
        jobs.push(Job {
            person: index,
            org: current_org,
            start,
            current: active && !retired,
        });
    }
    jobs
}

fn job_start(rng: &mut Rng, org: &Org, adult: Date) -> Date {
    let from = org.founded.max(adult).max(Date::new(1995, 1, 1));
    Date::between(rng, from, TODAY.plus_days(-30))
}

fn holdings(rng: &mut Rng, persons: &[Person], families: &[Family], couples: &[Couple], orgs: &[Org]) -> Vec<Holding> {
    let mut holdings = Vec::new();
    for family in families {
        let Some(head) = persons.get(family.head) else { continue };
        if head.age_on(TODAY) < 22 || !chance(rng, 0.6) {
            continue;
        }
        let couple = couples
            .iter()
            .find(|c| (c.husband == family.head || c.wife == family.head) && c.divorced.is_none());
        let mut holders = vec![Party::Person(family.head)];
        let mut since = head.birth.plus_years(22);
        if let Some(couple) = couple {
            let spouse = if couple.husband == family.head {
                couple.wife
            } else {
                couple.husband
            };
            holders.push(Party::Person(spouse));
            since = since.max(couple.married);
        }
        let adult_child = family
            .children
            .iter()
            .filter_map(|&c| persons.get(c).map(|p| (c, p)))
            .find(|(_, p)| p.age_on(TODAY) >= 20);
        if let Some((child, person)) = adult_child.filter(|_| chance(rng, 0.3)) {
            holders.push(Party::Person(child));
            since = since.max(person.birth.plus_years(20));
        }
        let registered = Date::between(rng, since.max(Date::new(2016, 1, 1)), TODAY);
        let marital = couple.is_some() && holders.len() == 2;
        holdings.push(Holding {
            holders,
            registered,
            marital,
            address: head.address.clone(),
        });
        if chance(rng, 0.15) {
            let registered = Date::between(rng, since.max(Date::new(2016, 1, 1)), TODAY);
            let address = random_address(rng);
            holdings.push(Holding {
                holders: vec![Party::Person(family.head)],
                registered,
                marital: false,
                address,
            });
        }
    }
    for (index, org) in orgs.iter().enumerate() {
        if org.local && matches!(org.kind, OrgKind::Company | OrgKind::JointStock) && chance(rng, 0.35) {
            let registered = Date::between(rng, org.founded.max(Date::new(2016, 1, 1)), TODAY);
            let address = org.address.clone();
            holdings.push(Holding {
                holders: vec![Party::Org(index)],
                registered,
                marital: false,
                address,
            });
        }
    }
    holdings
}
