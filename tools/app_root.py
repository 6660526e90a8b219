# ruff: noqa: RUF001 -- the translations hold Greek letters and full-width punctuation on purpose
"""Keep the shipped Chainlit app root in shape: its translations and the repository's top-level copy.

`python tools/app_root.py translations` rewrites smart_agent/web/app_root/.chainlit/translations/ from
the installed Chainlit's own files with smart-agent's login texts (`login_texts`) put in: run it after
upgrading Chainlit. `python tools/app_root.py sync` copies the app root's `.chainlit/` and
`chainlit.md` to the top of the repository, where Chainlit users look for them
(tests/test_app_root.py fails while they differ).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP_ROOT = ROOT / "smart_agent" / "web" / "app_root"
TRANSLATIONS = Path(".chainlit") / "translations"

# Accounts are user names, not e-mail addresses; Chainlit's page shows a failed sign-in's detail as
# the key `auth.login.errors.<detail>`: `credentialssignin` (Chainlit's) and `toomanysignins`
# (smart_agent/web/login.py's sign-in limit).
KEYS = (
    "auth.login.form.email.label",
    "auth.login.form.email.required",
    "auth.login.form.email.placeholder",
    "auth.login.errors.credentialsSignin",
    "auth.login.errors.credentialssignin",
    "auth.login.errors.toomanysignins",
)
"""The keys whose texts differ from Chainlit's; every other key is Chainlit's own."""

_TEXTS: dict[str, tuple[str, str, str, str]] = {
    # language: (label, required, wrong user name or password, too many failed sign-ins)
    "ar-SA": (
        "اسم المستخدم",
        "اسم المستخدم حقل إلزامي",
        "اسم المستخدم أو كلمة المرور غير صحيحة.",
        "محاولات تسجيل دخول فاشلة كثيرة. انتظر دقيقة ثم حاول مرة أخرى.",
    ),
    "bn": (
        "ব্যবহারকারীর নাম",
        "ব্যবহারকারীর নাম একটি আবশ্যক ক্ষেত্র",
        "ভুল ব্যবহারকারীর নাম বা পাসওয়ার্ড।",
        "অনেকবার সাইন ইন ব্যর্থ হয়েছে। এক মিনিট অপেক্ষা করে আবার চেষ্টা করুন।",
    ),
    "da-DK": (
        "Brugernavn",
        "brugernavn er et påkrævet felt",
        "Forkert brugernavn eller adgangskode.",
        "For mange mislykkede login. Vent et minut, og prøv igen.",
    ),
    "de-DE": (
        "Benutzername",
        "Benutzername ist ein Pflichtfeld",
        "Falscher Benutzername oder falsches Passwort.",
        "Zu viele fehlgeschlagene Anmeldungen. Warte eine Minute und versuche es dann erneut.",
    ),
    "el-GR": (
        "Όνομα χρήστη",
        "Το όνομα χρήστη είναι υποχρεωτικό πεδίο",
        "Λάθος όνομα χρήστη ή κωδικός πρόσβασης.",
        "Πάρα πολλές αποτυχημένες συνδέσεις. Περιμένετε ένα λεπτό και δοκιμάστε ξανά.",
    ),
    "en-US": (
        "User name",
        "user name is a required field",
        "Wrong user name or password.",
        "Too many failed sign-ins. Wait a minute, then try again.",
    ),
    "es": (
        "Nombre de usuario",
        "el nombre de usuario es obligatorio",
        "Nombre de usuario o contraseña incorrectos.",
        "Demasiados inicios de sesión fallidos. Espera un minuto y vuelve a intentarlo.",
    ),
    "fr-FR": (
        "Nom d'utilisateur",
        "le nom d'utilisateur est un champ obligatoire",
        "Nom d'utilisateur ou mot de passe incorrect.",
        "Trop de connexions échouées. Attendez une minute, puis réessayez.",
    ),
    "gu": (
        "વપરાશકર્તા નામ",
        "વપરાશકર્તા નામ આવશ્યક છે",
        "ખોટું વપરાશકર્તા નામ અથવા પાસવર્ડ.",
        "ઘણા બધા સાઇન ઇન પ્રયાસો નિષ્ફળ ગયા. એક મિનિટ રાહ જુઓ, પછી ફરી પ્રયાસ કરો.",
    ),
    "he-IL": (
        "שם משתמש",
        "שם המשתמש הוא שדה חובה",
        "שם משתמש או סיסמה שגויים.",
        "יותר מדי ניסיונות התחברות שנכשלו. המתן דקה ונסה שוב.",
    ),
    "hi": (
        "उपयोगकर्ता नाम",
        "उपयोगकर्ता नाम एक आवश्यक फ़ील्ड है",
        "गलत उपयोगकर्ता नाम या पासवर्ड।",
        "बहुत सारे साइन इन प्रयास विफल रहे। एक मिनट रुकें, फिर दोबारा प्रयास करें।",
    ),
    "it": (
        "Nome utente",
        "il nome utente è un campo obbligatorio",
        "Nome utente o password errati.",
        "Troppi accessi non riusciti. Attendi un minuto, poi riprova.",
    ),
    "ja": (
        "ユーザー名",
        "ユーザー名は必須項目です",
        "ユーザー名またはパスワードが正しくありません。",
        "サインインの失敗が多すぎます。1 分待ってから、もう一度お試しください。",
    ),
    "kn": (
        "ಬಳಕೆದಾರ ಹೆಸರು",
        "ಬಳಕೆದಾರ ಹೆಸರು ಅಗತ್ಯವಿರುವ ಕ್ಷೇತ್ರ",
        "ತಪ್ಪು ಬಳಕೆದಾರ ಹೆಸರು ಅಥವಾ ಪಾಸ್‌ವರ್ಡ್.",
        "ಹಲವು ಸೈನ್ ಇನ್ ಪ್ರಯತ್ನಗಳು ವಿಫಲವಾಗಿವೆ. ಒಂದು ನಿಮಿಷ ಕಾಯಿರಿ, ನಂತರ ಮತ್ತೆ ಪ್ರಯತ್ನಿಸಿ.",
    ),
    "ko": (
        "사용자 이름",
        "사용자 이름은 필수 입력 항목입니다",
        "사용자 이름 또는 비밀번호가 올바르지 않습니다.",
        "로그인 실패가 너무 많습니다. 1분 후에 다시 시도하세요.",
    ),
    "ml": (
        "ഉപയോക്തൃനാമം",
        "ഉപയോക്തൃനാമം ഒരു ആവശ്യമായ ഫീൽഡ് ആണ്",
        "ഉപയോക്തൃനാമം അല്ലെങ്കിൽ പാസ്‌വേഡ് തെറ്റാണ്.",
        "വളരെയധികം സൈൻ ഇൻ ശ്രമങ്ങൾ പരാജയപ്പെട്ടു. ഒരു മിനിറ്റ് കാത്തിരുന്ന ശേഷം വീണ്ടും ശ്രമിക്കുക.",
    ),
    "mr": (
        "वापरकर्ता नाव",
        "वापरकर्ता नाव आवश्यक आहे",
        "चुकीचे वापरकर्ता नाव किंवा पासवर्ड.",
        "खूप साइन इन प्रयत्न अयशस्वी झाले. एक मिनिट थांबा, नंतर पुन्हा प्रयत्न करा.",
    ),
    "nl": (
        "Gebruikersnaam",
        "gebruikersnaam is een verplicht veld",
        "Onjuiste gebruikersnaam of onjuist wachtwoord.",
        "Te veel mislukte aanmeldingen. Wacht een minuut en probeer het dan opnieuw.",
    ),
    "pt-PT": (
        "Nome de utilizador",
        "o nome de utilizador é obrigatório",
        "Nome de utilizador ou palavra-passe incorretos.",
        "Demasiadas tentativas de início de sessão falhadas. Aguarde um minuto e tente novamente.",
    ),
    "ta": (
        "பயனர் பெயர்",
        "பயனர் பெயர் தேவையான புலம்",
        "தவறான பயனர் பெயர் அல்லது கடவுச்சொல்.",
        "பல உள்நுழைவு முயற்சிகள் தோல்வியடைந்தன. ஒரு நிமிடம் காத்திருந்து மீண்டும் முயற்சிக்கவும்.",
    ),
    "te": (
        "వినియోగదారు పేరు",
        "వినియోగదారు పేరు తప్పనిసరి",
        "తప్పు వినియోగదారు పేరు లేదా పాస్‌వర్డ్.",
        "చాలా సైన్ ఇన్ ప్రయత్నాలు విఫలమయ్యాయి. ఒక నిమిషం ఆగి, మళ్లీ ప్రయత్నించండి.",
    ),
    "zh-CN": ("用户名", "用户名是必填项", "用户名或密码错误。", "登录失败次数过多。请等待一分钟后再试。"),
    "zh-TW": (
        "使用者名稱",
        "使用者名稱是必填項目",
        "使用者名稱或密碼錯誤。",
        "登入失敗次數過多。請等待一分鐘後再試。",
    ),
}


def login_texts(language: str) -> dict[str, str]:
    """The texts of KEYS in `language`."""
    label, required, wrong, too_many = _TEXTS[language]
    return dict(zip(KEYS, (label, required, "", wrong, wrong, too_many), strict=True))


def put(tree: dict[str, Any], key: str, text: str) -> None:
    """Set the dotted `key` of a translation tree."""
    *path, last = key.split(".")
    for part in path:
        tree = tree[part]
    tree[last] = text


def translations() -> None:
    """Chainlit's translation files with `login_texts` put in, written to the app root."""
    # Not imported: importing chainlit.config writes into the current folder.
    spec = importlib.util.find_spec("chainlit")
    assert spec is not None and spec.submodule_search_locations
    source = Path(spec.submodule_search_locations[0]) / "translations"
    target = APP_ROOT / TRANSLATIONS
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.json")):
        tree = json.loads(path.read_text(encoding="utf-8"))
        for key, text in login_texts(path.stem).items():
            put(tree, key, text)
        (target / path.name).write_text(json.dumps(tree, ensure_ascii=False, indent=2) + "\n", "utf-8")


def sync() -> None:
    """The repository's top-level `.chainlit/` and `chainlit.md` made exact copies of the app root's."""
    shutil.rmtree(ROOT / ".chainlit", ignore_errors=True)
    shutil.copytree(APP_ROOT / ".chainlit", ROOT / ".chainlit")
    shutil.copyfile(APP_ROOT / "chainlit.md", ROOT / "chainlit.md")


if __name__ == "__main__":
    {"translations": translations, "sync": sync}[sys.argv[1]]()
