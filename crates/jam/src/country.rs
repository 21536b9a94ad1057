//! Owns the mapping between Qt 5 `QLocale::Country` numbers (the country field on the Jamulus wire, PROTOCOL.md §3.7),
//! their Qt identifier names and ISO 3166-1 alpha-2 codes. No IO.

/// One Qt 5 country: its wire number, Qt identifier name and ISO 3166-1 alpha-2 code, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// The Qt 5.15 `QLocale::Country` value.
    pub number: u16,
    /// Qt's identifier, e.g. `"Germany"`.
    pub name: &'static str,
    /// Upper-case ISO 3166-1 alpha-2 code (including the exceptionally reserved ones Qt uses, e.g. `"IC"`); `None`
    /// for "any country" and regions such as `World` or `EuropeanUnion`.
    pub iso: Option<&'static str>,
}

/// Highest valid Qt 5 country number (`Europe`).
pub const MAX: u16 = 261;

/// Every Qt 5.15 country, indexed by its number (0 = `AnyCountry` … 261 = `Europe`).
pub static COUNTRIES: [Country; MAX as usize + 1] = [
    Country { number: 0, name: "AnyCountry", iso: None },
    Country { number: 1, name: "Afghanistan", iso: Some("AF") },
    Country { number: 2, name: "Albania", iso: Some("AL") },
    Country { number: 3, name: "Algeria", iso: Some("DZ") },
    Country { number: 4, name: "AmericanSamoa", iso: Some("AS") },
    Country { number: 5, name: "Andorra", iso: Some("AD") },
    Country { number: 6, name: "Angola", iso: Some("AO") },
    Country { number: 7, name: "Anguilla", iso: Some("AI") },
    Country { number: 8, name: "Antarctica", iso: Some("AQ") },
    Country { number: 9, name: "AntiguaAndBarbuda", iso: Some("AG") },
    Country { number: 10, name: "Argentina", iso: Some("AR") },
    Country { number: 11, name: "Armenia", iso: Some("AM") },
    Country { number: 12, name: "Aruba", iso: Some("AW") },
    Country { number: 13, name: "Australia", iso: Some("AU") },
    Country { number: 14, name: "Austria", iso: Some("AT") },
    Country { number: 15, name: "Azerbaijan", iso: Some("AZ") },
    Country { number: 16, name: "Bahamas", iso: Some("BS") },
    Country { number: 17, name: "Bahrain", iso: Some("BH") },
    Country { number: 18, name: "Bangladesh", iso: Some("BD") },
    Country { number: 19, name: "Barbados", iso: Some("BB") },
    Country { number: 20, name: "Belarus", iso: Some("BY") },
    Country { number: 21, name: "Belgium", iso: Some("BE") },
    Country { number: 22, name: "Belize", iso: Some("BZ") },
    Country { number: 23, name: "Benin", iso: Some("BJ") },
    Country { number: 24, name: "Bermuda", iso: Some("BM") },
    Country { number: 25, name: "Bhutan", iso: Some("BT") },
    Country { number: 26, name: "Bolivia", iso: Some("BO") },
    Country { number: 27, name: "BosniaAndHerzegowina", iso: Some("BA") },
    Country { number: 28, name: "Botswana", iso: Some("BW") },
    Country { number: 29, name: "BouvetIsland", iso: Some("BV") },
    Country { number: 30, name: "Brazil", iso: Some("BR") },
    Country { number: 31, name: "BritishIndianOceanTerritory", iso: Some("IO") },
    Country { number: 32, name: "Brunei", iso: Some("BN") },
    Country { number: 33, name: "Bulgaria", iso: Some("BG") },
    Country { number: 34, name: "BurkinaFaso", iso: Some("BF") },
    Country { number: 35, name: "Burundi", iso: Some("BI") },
    Country { number: 36, name: "Cambodia", iso: Some("KH") },
    Country { number: 37, name: "Cameroon", iso: Some("CM") },
    Country { number: 38, name: "Canada", iso: Some("CA") },
    Country { number: 39, name: "CapeVerde", iso: Some("CV") },
    Country { number: 40, name: "CaymanIslands", iso: Some("KY") },
    Country { number: 41, name: "CentralAfricanRepublic", iso: Some("CF") },
    Country { number: 42, name: "Chad", iso: Some("TD") },
    Country { number: 43, name: "Chile", iso: Some("CL") },
    Country { number: 44, name: "China", iso: Some("CN") },
    Country { number: 45, name: "ChristmasIsland", iso: Some("CX") },
    Country { number: 46, name: "CocosIslands", iso: Some("CC") },
    Country { number: 47, name: "Colombia", iso: Some("CO") },
    Country { number: 48, name: "Comoros", iso: Some("KM") },
    Country { number: 49, name: "CongoKinshasa", iso: Some("CD") },
    Country { number: 50, name: "CongoBrazzaville", iso: Some("CG") },
    Country { number: 51, name: "CookIslands", iso: Some("CK") },
    Country { number: 52, name: "CostaRica", iso: Some("CR") },
    Country { number: 53, name: "IvoryCoast", iso: Some("CI") },
    Country { number: 54, name: "Croatia", iso: Some("HR") },
    Country { number: 55, name: "Cuba", iso: Some("CU") },
    Country { number: 56, name: "Cyprus", iso: Some("CY") },
    Country { number: 57, name: "CzechRepublic", iso: Some("CZ") },
    Country { number: 58, name: "Denmark", iso: Some("DK") },
    Country { number: 59, name: "Djibouti", iso: Some("DJ") },
    Country { number: 60, name: "Dominica", iso: Some("DM") },
    Country { number: 61, name: "DominicanRepublic", iso: Some("DO") },
    Country { number: 62, name: "EastTimor", iso: Some("TL") },
    Country { number: 63, name: "Ecuador", iso: Some("EC") },
    Country { number: 64, name: "Egypt", iso: Some("EG") },
    Country { number: 65, name: "ElSalvador", iso: Some("SV") },
    Country { number: 66, name: "EquatorialGuinea", iso: Some("GQ") },
    Country { number: 67, name: "Eritrea", iso: Some("ER") },
    Country { number: 68, name: "Estonia", iso: Some("EE") },
    Country { number: 69, name: "Ethiopia", iso: Some("ET") },
    Country { number: 70, name: "FalklandIslands", iso: Some("FK") },
    Country { number: 71, name: "FaroeIslands", iso: Some("FO") },
    Country { number: 72, name: "Fiji", iso: Some("FJ") },
    Country { number: 73, name: "Finland", iso: Some("FI") },
    Country { number: 74, name: "France", iso: Some("FR") },
    Country { number: 75, name: "Guernsey", iso: Some("GG") },
    Country { number: 76, name: "FrenchGuiana", iso: Some("GF") },
    Country { number: 77, name: "FrenchPolynesia", iso: Some("PF") },
    Country { number: 78, name: "FrenchSouthernTerritories", iso: Some("TF") },
    Country { number: 79, name: "Gabon", iso: Some("GA") },
    Country { number: 80, name: "Gambia", iso: Some("GM") },
    Country { number: 81, name: "Georgia", iso: Some("GE") },
    Country { number: 82, name: "Germany", iso: Some("DE") },
    Country { number: 83, name: "Ghana", iso: Some("GH") },
    Country { number: 84, name: "Gibraltar", iso: Some("GI") },
    Country { number: 85, name: "Greece", iso: Some("GR") },
    Country { number: 86, name: "Greenland", iso: Some("GL") },
    Country { number: 87, name: "Grenada", iso: Some("GD") },
    Country { number: 88, name: "Guadeloupe", iso: Some("GP") },
    Country { number: 89, name: "Guam", iso: Some("GU") },
    Country { number: 90, name: "Guatemala", iso: Some("GT") },
    Country { number: 91, name: "Guinea", iso: Some("GN") },
    Country { number: 92, name: "GuineaBissau", iso: Some("GW") },
    Country { number: 93, name: "Guyana", iso: Some("GY") },
    Country { number: 94, name: "Haiti", iso: Some("HT") },
    Country { number: 95, name: "HeardAndMcDonaldIslands", iso: Some("HM") },
    Country { number: 96, name: "Honduras", iso: Some("HN") },
    Country { number: 97, name: "HongKong", iso: Some("HK") },
    Country { number: 98, name: "Hungary", iso: Some("HU") },
    Country { number: 99, name: "Iceland", iso: Some("IS") },
    Country { number: 100, name: "India", iso: Some("IN") },
    Country { number: 101, name: "Indonesia", iso: Some("ID") },
    Country { number: 102, name: "Iran", iso: Some("IR") },
    Country { number: 103, name: "Iraq", iso: Some("IQ") },
    Country { number: 104, name: "Ireland", iso: Some("IE") },
    Country { number: 105, name: "Israel", iso: Some("IL") },
    Country { number: 106, name: "Italy", iso: Some("IT") },
    Country { number: 107, name: "Jamaica", iso: Some("JM") },
    Country { number: 108, name: "Japan", iso: Some("JP") },
    Country { number: 109, name: "Jordan", iso: Some("JO") },
    Country { number: 110, name: "Kazakhstan", iso: Some("KZ") },
    Country { number: 111, name: "Kenya", iso: Some("KE") },
    Country { number: 112, name: "Kiribati", iso: Some("KI") },
    Country { number: 113, name: "NorthKorea", iso: Some("KP") },
    Country { number: 114, name: "SouthKorea", iso: Some("KR") },
    Country { number: 115, name: "Kuwait", iso: Some("KW") },
    Country { number: 116, name: "Kyrgyzstan", iso: Some("KG") },
    Country { number: 117, name: "Laos", iso: Some("LA") },
    Country { number: 118, name: "Latvia", iso: Some("LV") },
    Country { number: 119, name: "Lebanon", iso: Some("LB") },
    Country { number: 120, name: "Lesotho", iso: Some("LS") },
    Country { number: 121, name: "Liberia", iso: Some("LR") },
    Country { number: 122, name: "Libya", iso: Some("LY") },
    Country { number: 123, name: "Liechtenstein", iso: Some("LI") },
    Country { number: 124, name: "Lithuania", iso: Some("LT") },
    Country { number: 125, name: "Luxembourg", iso: Some("LU") },
    Country { number: 126, name: "Macau", iso: Some("MO") },
    Country { number: 127, name: "Macedonia", iso: Some("MK") },
    Country { number: 128, name: "Madagascar", iso: Some("MG") },
    Country { number: 129, name: "Malawi", iso: Some("MW") },
    Country { number: 130, name: "Malaysia", iso: Some("MY") },
    Country { number: 131, name: "Maldives", iso: Some("MV") },
    Country { number: 132, name: "Mali", iso: Some("ML") },
    Country { number: 133, name: "Malta", iso: Some("MT") },
    Country { number: 134, name: "MarshallIslands", iso: Some("MH") },
    Country { number: 135, name: "Martinique", iso: Some("MQ") },
    Country { number: 136, name: "Mauritania", iso: Some("MR") },
    Country { number: 137, name: "Mauritius", iso: Some("MU") },
    Country { number: 138, name: "Mayotte", iso: Some("YT") },
    Country { number: 139, name: "Mexico", iso: Some("MX") },
    Country { number: 140, name: "Micronesia", iso: Some("FM") },
    Country { number: 141, name: "Moldova", iso: Some("MD") },
    Country { number: 142, name: "Monaco", iso: Some("MC") },
    Country { number: 143, name: "Mongolia", iso: Some("MN") },
    Country { number: 144, name: "Montserrat", iso: Some("MS") },
    Country { number: 145, name: "Morocco", iso: Some("MA") },
    Country { number: 146, name: "Mozambique", iso: Some("MZ") },
    Country { number: 147, name: "Myanmar", iso: Some("MM") },
    Country { number: 148, name: "Namibia", iso: Some("NA") },
    Country { number: 149, name: "NauruCountry", iso: Some("NR") },
    Country { number: 150, name: "Nepal", iso: Some("NP") },
    Country { number: 151, name: "Netherlands", iso: Some("NL") },
    Country { number: 152, name: "CuraSao", iso: Some("CW") },
    Country { number: 153, name: "NewCaledonia", iso: Some("NC") },
    Country { number: 154, name: "NewZealand", iso: Some("NZ") },
    Country { number: 155, name: "Nicaragua", iso: Some("NI") },
    Country { number: 156, name: "Niger", iso: Some("NE") },
    Country { number: 157, name: "Nigeria", iso: Some("NG") },
    Country { number: 158, name: "Niue", iso: Some("NU") },
    Country { number: 159, name: "NorfolkIsland", iso: Some("NF") },
    Country { number: 160, name: "NorthernMarianaIslands", iso: Some("MP") },
    Country { number: 161, name: "Norway", iso: Some("NO") },
    Country { number: 162, name: "Oman", iso: Some("OM") },
    Country { number: 163, name: "Pakistan", iso: Some("PK") },
    Country { number: 164, name: "Palau", iso: Some("PW") },
    Country { number: 165, name: "PalestinianTerritories", iso: Some("PS") },
    Country { number: 166, name: "Panama", iso: Some("PA") },
    Country { number: 167, name: "PapuaNewGuinea", iso: Some("PG") },
    Country { number: 168, name: "Paraguay", iso: Some("PY") },
    Country { number: 169, name: "Peru", iso: Some("PE") },
    Country { number: 170, name: "Philippines", iso: Some("PH") },
    Country { number: 171, name: "Pitcairn", iso: Some("PN") },
    Country { number: 172, name: "Poland", iso: Some("PL") },
    Country { number: 173, name: "Portugal", iso: Some("PT") },
    Country { number: 174, name: "PuertoRico", iso: Some("PR") },
    Country { number: 175, name: "Qatar", iso: Some("QA") },
    Country { number: 176, name: "Reunion", iso: Some("RE") },
    Country { number: 177, name: "Romania", iso: Some("RO") },
    Country { number: 178, name: "Russia", iso: Some("RU") },
    Country { number: 179, name: "Rwanda", iso: Some("RW") },
    Country { number: 180, name: "SaintKittsAndNevis", iso: Some("KN") },
    Country { number: 181, name: "SaintLucia", iso: Some("LC") },
    Country { number: 182, name: "SaintVincentAndTheGrenadines", iso: Some("VC") },
    Country { number: 183, name: "Samoa", iso: Some("WS") },
    Country { number: 184, name: "SanMarino", iso: Some("SM") },
    Country { number: 185, name: "SaoTomeAndPrincipe", iso: Some("ST") },
    Country { number: 186, name: "SaudiArabia", iso: Some("SA") },
    Country { number: 187, name: "Senegal", iso: Some("SN") },
    Country { number: 188, name: "Seychelles", iso: Some("SC") },
    Country { number: 189, name: "SierraLeone", iso: Some("SL") },
    Country { number: 190, name: "Singapore", iso: Some("SG") },
    Country { number: 191, name: "Slovakia", iso: Some("SK") },
    Country { number: 192, name: "Slovenia", iso: Some("SI") },
    Country { number: 193, name: "SolomonIslands", iso: Some("SB") },
    Country { number: 194, name: "Somalia", iso: Some("SO") },
    Country { number: 195, name: "SouthAfrica", iso: Some("ZA") },
    Country { number: 196, name: "SouthGeorgiaAndTheSouthSandwichIslands", iso: Some("GS") },
    Country { number: 197, name: "Spain", iso: Some("ES") },
    Country { number: 198, name: "SriLanka", iso: Some("LK") },
    Country { number: 199, name: "SaintHelena", iso: Some("SH") },
    Country { number: 200, name: "SaintPierreAndMiquelon", iso: Some("PM") },
    Country { number: 201, name: "Sudan", iso: Some("SD") },
    Country { number: 202, name: "Suriname", iso: Some("SR") },
    Country { number: 203, name: "SvalbardAndJanMayenIslands", iso: Some("SJ") },
    Country { number: 204, name: "Swaziland", iso: Some("SZ") },
    Country { number: 205, name: "Sweden", iso: Some("SE") },
    Country { number: 206, name: "Switzerland", iso: Some("CH") },
    Country { number: 207, name: "Syria", iso: Some("SY") },
    Country { number: 208, name: "Taiwan", iso: Some("TW") },
    Country { number: 209, name: "Tajikistan", iso: Some("TJ") },
    Country { number: 210, name: "Tanzania", iso: Some("TZ") },
    Country { number: 211, name: "Thailand", iso: Some("TH") },
    Country { number: 212, name: "Togo", iso: Some("TG") },
    Country { number: 213, name: "TokelauCountry", iso: Some("TK") },
    Country { number: 214, name: "Tonga", iso: Some("TO") },
    Country { number: 215, name: "TrinidadAndTobago", iso: Some("TT") },
    Country { number: 216, name: "Tunisia", iso: Some("TN") },
    Country { number: 217, name: "Turkey", iso: Some("TR") },
    Country { number: 218, name: "Turkmenistan", iso: Some("TM") },
    Country { number: 219, name: "TurksAndCaicosIslands", iso: Some("TC") },
    Country { number: 220, name: "TuvaluCountry", iso: Some("TV") },
    Country { number: 221, name: "Uganda", iso: Some("UG") },
    Country { number: 222, name: "Ukraine", iso: Some("UA") },
    Country { number: 223, name: "UnitedArabEmirates", iso: Some("AE") },
    Country { number: 224, name: "UnitedKingdom", iso: Some("GB") },
    Country { number: 225, name: "UnitedStates", iso: Some("US") },
    Country { number: 226, name: "UnitedStatesMinorOutlyingIslands", iso: Some("UM") },
    Country { number: 227, name: "Uruguay", iso: Some("UY") },
    Country { number: 228, name: "Uzbekistan", iso: Some("UZ") },
    Country { number: 229, name: "Vanuatu", iso: Some("VU") },
    Country { number: 230, name: "VaticanCityState", iso: Some("VA") },
    Country { number: 231, name: "Venezuela", iso: Some("VE") },
    Country { number: 232, name: "Vietnam", iso: Some("VN") },
    Country { number: 233, name: "BritishVirginIslands", iso: Some("VG") },
    Country { number: 234, name: "UnitedStatesVirginIslands", iso: Some("VI") },
    Country { number: 235, name: "WallisAndFutunaIslands", iso: Some("WF") },
    Country { number: 236, name: "WesternSahara", iso: Some("EH") },
    Country { number: 237, name: "Yemen", iso: Some("YE") },
    Country { number: 238, name: "CanaryIslands", iso: Some("IC") },
    Country { number: 239, name: "Zambia", iso: Some("ZM") },
    Country { number: 240, name: "Zimbabwe", iso: Some("ZW") },
    Country { number: 241, name: "ClippertonIsland", iso: Some("CP") },
    Country { number: 242, name: "Montenegro", iso: Some("ME") },
    Country { number: 243, name: "Serbia", iso: Some("RS") },
    Country { number: 244, name: "SaintBarthelemy", iso: Some("BL") },
    Country { number: 245, name: "SaintMartin", iso: Some("MF") },
    Country { number: 246, name: "LatinAmerica", iso: None },
    Country { number: 247, name: "AscensionIsland", iso: Some("AC") },
    Country { number: 248, name: "AlandIslands", iso: Some("AX") },
    Country { number: 249, name: "DiegoGarcia", iso: Some("DG") },
    Country { number: 250, name: "CeutaAndMelilla", iso: Some("EA") },
    Country { number: 251, name: "IsleOfMan", iso: Some("IM") },
    Country { number: 252, name: "Jersey", iso: Some("JE") },
    Country { number: 253, name: "TristanDaCunha", iso: Some("TA") },
    Country { number: 254, name: "SouthSudan", iso: Some("SS") },
    Country { number: 255, name: "Bonaire", iso: Some("BQ") },
    Country { number: 256, name: "SintMaarten", iso: Some("SX") },
    Country { number: 257, name: "Kosovo", iso: Some("XK") },
    Country { number: 258, name: "EuropeanUnion", iso: None },
    Country { number: 259, name: "OutlyingOceania", iso: None },
    Country { number: 260, name: "World", iso: None },
    Country { number: 261, name: "Europe", iso: None },
];

/// The Qt 5 country number of a two-letter ISO 3166-1 alpha-2 code (case-insensitive).
pub fn from_iso(code: &str) -> Option<u16> {
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    COUNTRIES.iter().find(|c| c.iso.is_some_and(|iso| iso.eq_ignore_ascii_case(code))).map(|c| c.number)
}

/// The ISO 3166-1 alpha-2 code of a Qt 5 country number, if it has one.
pub fn iso(country: u16) -> Option<&'static str> {
    COUNTRIES.get(usize::from(country)).and_then(|c| c.iso)
}

/// The Qt identifier name of a Qt 5 country number.
pub fn name(country: u16) -> Option<&'static str> {
    COUNTRIES.get(usize::from(country)).map(|c| c.name)
}

/// Parses a `--serverinfo` country: a Qt 5 number 0…261 or a two-letter ISO code, surrounding whitespace ignored.
pub fn parse(text: &str) -> Option<u16> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u16>().ok().filter(|&n| n <= MAX);
    }
    from_iso(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn known_pairs() {
        let pairs = [
            ("DE", 82),
            ("US", 225),
            ("GB", 224),
            ("FR", 74),
            ("JP", 108),
            ("BR", 30),
            ("AU", 13),
            ("CA", 38),
            ("CH", 206),
            ("AT", 14),
        ];
        for (code, number) in pairs {
            assert_eq!(from_iso(code), Some(number), "{code}");
            assert_eq!(from_iso(&code.to_ascii_lowercase()), Some(number), "{code}");
            assert_eq!(iso(number), Some(code), "{number}");
        }
        assert_eq!(name(82), Some("Germany"));
        assert_eq!(name(0), Some("AnyCountry"));
        assert_eq!(name(261), Some("Europe"));
        assert_eq!(name(262), None);
        assert_eq!(iso(0), None);
        assert_eq!(iso(262), None);
    }

    #[test]
    fn table_is_complete_and_ordered() {
        assert_eq!(COUNTRIES.len(), 262);
        for (i, c) in COUNTRIES.iter().enumerate() {
            assert_eq!(usize::from(c.number), i);
            assert!(!c.name.is_empty());
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for c in &COUNTRIES {
            if let Some(code) = c.iso {
                assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
                assert!(seen.insert(code), "duplicate code {code}");
                assert_eq!(iso(from_iso(code).unwrap()), Some(code));
                assert_eq!(from_iso(code), Some(c.number));
            }
        }
    }

    #[test]
    fn parse_numbers_and_codes() {
        assert_eq!(parse("82"), Some(82));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("261"), Some(261));
        assert_eq!(parse(" de "), Some(82));
        assert_eq!(parse("262"), None);
        assert_eq!(parse("99999"), None);
        assert_eq!(parse("+82"), None);
        assert_eq!(parse("ZZ"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("DEU"), None);
    }
}
