"""A deterministic synthetic French help center, for benchmarks at scale.

``generate(n, dest, seed)`` writes ``n`` articles of a CPRO-like help center (three
categories, titles made of an action, an object and a qualifier, bodies of 150-600 words
with headings, lists, notes and links) into the kb content directory ``dest``.

    python -m bench.corpora generated DEST [--n N] [--seed S]
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpora import relative_link, slugify, write_article, write_category

# Per category: an object, its gender and number (m, f, mp, fp), its keywords.
_OBJECTS_TABLE = """
compte-utilisateur
  le mot de passe | m | mot de passe, mdp, identifiants
  l'adresse e-mail | f | adresse e-mail, courriel, mail
  l'identifiant de connexion | m | identifiant, login, connexion
  le code UAI | m | code UAI, RNE, code établissement
  le profil | m | profil, informations personnelles
  la photo de profil | f | avatar, photo
  la double authentification | f | authentification à deux facteurs, 2FA, code de vérification
  le numéro de téléphone | m | téléphone, mobile, SMS
  les préférences de notification | fp | notifications, alertes, e-mails automatiques
  la langue de l'interface | f | langue, traduction
  le compte administrateur | m | administrateur, droits d'accès, rôle
  les accès des enseignants | mp | enseignants, professeurs, comptes utilisateurs
  la session | f | déconnexion, session expirée
  le lien d'activation | m | activation, lien expiré
abonnement
  l'abonnement | m | abonnement, licence, souscription
  la facture | f | facture, facturation, PDF
  l'adresse de facturation | f | adresse de facturation, coordonnées, facturation
  le moyen de paiement | m | paiement, carte bancaire, CB
  le prélèvement SEPA | m | prélèvement, SEPA, mandat
  le bon de commande | m | bon de commande, commande
  le devis | m | devis, tarif, proposition commerciale
  la licence établissement | f | licence, établissement, nombre de postes
  la période d'essai | f | essai gratuit, test, démo
  le renouvellement automatique | m | renouvellement, reconduction, échéance
  le mandat administratif | m | mandat administratif, Chorus Pro, paiement public
  la remise | f | remise, réduction, code promo
  les options payantes | fp | options, modules, tarifs
utilisation
  l'emploi du temps | m | emploi du temps, EDT, planning
  le cahier de textes | m | cahier de textes, devoirs
  le bulletin | m | bulletin, bulletin trimestriel, appréciations
  la liste des classes | f | classes, divisions
  la fiche élève | f | élève, fiche élève, responsables
  l'import SIECLE | m | SIECLE, import, base élèves
  l'export CSV | m | export, CSV, tableur
  le tableau de bord | m | tableau de bord, accueil
  les notes | fp | notes, évaluations, moyennes
  les absences | fp | absences, retards, appel
  la messagerie | f | messagerie, messages, familles
  les pièces jointes | fp | pièce jointe, PJ, fichier
  les groupes | mp | groupes, options, regroupements
  l'année scolaire | f | année scolaire, bascule, archives
  les salles | fp | salles, réservation, ressources
"""


def _objects() -> dict[str, list[tuple[str, str, str, list[str]]]]:
    """Per category: (the object, its "de" form, gender and number, keywords)."""
    objects: dict[str, list[tuple[str, str, str, list[str]]]] = {}
    for line in _OBJECTS_TABLE.strip().splitlines():
        if not line.startswith(" "):
            category = objects.setdefault(line, [])
            continue
        obj, gender, keywords = line.strip().split(" | ")
        de = (("le ", "du "), ("la ", "de la "), ("l'", "de l'"), ("les ", "des "))
        obj_de = next(d + obj[len(the) :] for the, d in de if obj.startswith(the))
        category.append((obj, obj_de, gender, keywords.split(", ")))
    return objects


_OBJECTS = _objects()
_CATEGORY_INFO = {
    "compte-utilisateur": (
        "Compte utilisateur",
        1,
        "Connexion, identifiants, profil et sécurité du compte.",
    ),
    "abonnement": ("Abonnement", 2, "Offres, factures, paiements et renouvellement."),
    "utilisation": (
        "Utilisation de l'application",
        3,
        "Classes, élèves, notes, emploi du temps, imports et exports.",
    ),
}
_ACTIONS = [
    ("modifier", "Modification"), ("supprimer", "Suppression"), ("ajouter", "Ajout"),
    ("réinitialiser", "Réinitialisation"), ("exporter", "Export"), ("importer", "Import"),
    ("consulter", "Consultation"), ("activer", "Activation"), ("désactiver", "Désactivation"),
    ("renouveler", "Renouvellement"), ("télécharger", "Téléchargement"), ("partager", "Partage"),
    ("configurer", "Configuration"), ("transférer", "Transfert"), ("archiver", "Archivage"),
    ("restaurer", "Restauration"), ("vérifier", "Vérification"), ("mettre à jour", "Mise à jour"),
]  # fmt: skip
_PROBLEMS = {  # what goes wrong with the object, by its gender and number
    "m": [
        "ne s'affiche pas", "n'est pas pris en compte", "est refusé", "a disparu", "est bloqué",
    ],
    "f": [
        "ne s'affiche pas", "n'est pas prise en compte", "est refusée", "a disparu", "est bloquée",
    ],
    "mp": [
        "ne s'affichent pas", "ne sont pas pris en compte", "sont refusés", "ont disparu",
        "sont bloqués",
    ],
    "fp": [
        "ne s'affichent pas", "ne sont pas prises en compte", "sont refusées", "ont disparu",
        "sont bloquées",
    ],
}  # fmt: skip
_QUALIFIERS = [
    " du compte {num}", " pour l'établissement {uai}", " de la classe {cls}",
    " depuis l'application mobile", " sur tablette", " en fin d'année scolaire",
    " après un changement de direction", " pour un second établissement", "", "", "",
]  # fmt: skip
_TITLES = [
    "Comment {act} {obj}{qual} ?", "Impossible de {act} {obj}{qual}",
    "{Noun} {obj_de}{qual} : mode d'emploi", "Pourquoi ne puis-je pas {act} {obj}{qual} ?",
    "Que faire si {obj} {problem} ?", "Puis-je {act} {obj} moi-même{qual} ?",
    "{Noun} {obj_de} : questions fréquentes", "Qui peut {act} {obj}{qual} ?",
]  # fmt: skip
_MENUS = [
    "Paramètres", "Mon compte", "Abonnement", "Facturation", "Administration", "Classes", "Élèves",
    "Documents", "Tableau de bord", "Établissement",
]  # fmt: skip
_BUTTONS = [
    "Modifier", "Enregistrer", "Valider", "Exporter", "Ajouter", "Continuer", "Télécharger",
    "Confirmer", "Appliquer les changements",
]  # fmt: skip
_ROLES = [  # (bare, with its article, with "à"): all masculine
    (role, f"l'{role}" if role[0] in "aeiouéè" else f"le {role}",
     f"à l'{role}" if role[0] in "aeiouéè" else f"au {role}")
    for role in ("chef d'établissement", "gestionnaire", "administrateur du compte",
                 "professeur principal", "secrétariat de direction", "référent numérique")
]  # fmt: skip
_ERRORS = [
    "Accès refusé", "Session expirée", "Code UAI invalide", "Paiement refusé",
    "Fichier trop volumineux", "Format non pris en charge", "Action non autorisée",
    "Une erreur inattendue est survenue",
]  # fmt: skip
_SPACES = [
    "espace personnel", "espace établissement", "espace administrateur", "interface de gestion",
]  # fmt: skip
_INTRO = [
    "Cet article explique comment {act} {obj} depuis votre {space}.",
    "Seul {role_le} peut {act} {obj}.",
    "La procédure prend généralement moins de {k} minutes.",
    "Les changements sont pris en compte immédiatement, sauf pour les comptes rattachés à "
    "plusieurs établissements.",
    "Si vous utilisez l'application mobile, certaines options ne sont disponibles que sur la "
    "version web.",
    "Avant de commencer, vérifiez que vous êtes connecté avec le code UAI de votre établissement.",
    "Vous pouvez {act} {obj} à tout moment, y compris pendant les vacances scolaires.",
    "Cette opération concerne uniquement l'établissement actuellement sélectionné.",
    "Un e-mail de confirmation est envoyé {role_au} après chaque modification.",
    "En cas de doute, notre équipe d'assistance répond sous 72 heures ouvrées.",
]
_SENTENCES = [
    "Le délai de prise en compte peut atteindre {k} heures ouvrées.",
    "Les informations saisies sont enregistrées automatiquement toutes les {k} secondes.",
    "Un historique des modifications est conservé pendant {k} mois.",
    "{Role_le} reçoit une notification dès que l'opération est terminée.",
    "Si le message « {error} » apparaît, déconnectez-vous puis reconnectez-vous.",
    "Les données des années précédentes restent consultables en lecture seule.",
    "Pensez à vider le cache de votre navigateur si l'affichage ne change pas.",
    "L'opération est irréversible : aucune restauration n'est possible après {k} jours.",
    "Vous pouvez suivre l'avancement depuis le menu **{menu}**.",
    "Le fichier généré est au format CSV, lisible dans un tableur.",
    "Les enseignants ne voient pas ce réglage : il est réservé {role_au}.",
    "Pour un établissement multisite, répétez l'opération pour chaque site.",
    "La modification {obj_de} n'a aucun effet sur les factures déjà émises.",
    "Les comptes en période d'essai disposent des mêmes fonctions, dans la limite de {k} "
    "utilisateurs.",
    "Nous vous conseillons d'effectuer cette opération en dehors des heures de cours.",
    "Une copie de sauvegarde est réalisée chaque nuit, entre 2 h et 4 h.",
    "Les navigateurs récents (Firefox, Chrome, Edge, Safari) sont tous pris en charge.",
    "En cas de changement de {role}, transmettez les accès avant son départ.",
    "Le code de vérification reçu par SMS est valable {k} minutes.",
    "La pièce jointe ne doit pas dépasser {k} Mo.",
]
_HEADINGS = [
    "Avant de commencer", "Étapes à suivre", "{Noun} {obj_de} depuis l'application mobile",
    "Si le message « {error} » s'affiche", "Questions fréquentes", "Délais de prise en compte",
    "Cas particuliers", "Qui peut {act} {obj} ?", "En cas de problème", "Bon à savoir",
]  # fmt: skip
_STEPS = [
    "Ouvrez le menu **{menu}**.", "Cliquez sur **{button}**.", "Sélectionnez {obj} dans la liste.",
    "Renseignez les champs obligatoires, signalés par un astérisque.",
    "Vérifiez le récapitulatif affiché à l'écran.", "Validez avec le bouton **{button}**.",
    "Attendez le message de confirmation en haut de la page.",
    "Déconnectez-vous puis reconnectez-vous pour voir le changement.",
]  # fmt: skip
_BULLETS = [
    "votre connexion internet fonctionne ;", "vous utilisez le bon code UAI ;",
    "votre abonnement est actif ;", "{role_le} a validé la demande ;",
    "le fichier est au format CSV ou XLSX ;", "votre navigateur est à jour ;",
    "les cookies sont autorisés pour notre domaine ;",
    "vous n'avez pas dépassé le nombre de postes de votre licence ;",
]  # fmt: skip
_NOTES = [
    "Cette fonction n'est pas disponible pendant la bascule d'année scolaire.",
    "Les modifications faites par erreur peuvent être annulées pendant {k} jours.",
    "Si rien ne change après {k} minutes, créez un ticket d'aide depuis cette page.",
]


_RANDOM_SLOTS: dict[str, Callable[[random.Random], Any]] = {
    "k": lambda rng: rng.choice([2, 3, 5, 10, 15, 30, 48]),
    "menu": lambda rng: rng.choice(_MENUS),
    "button": lambda rng: rng.choice(_BUTTONS),
    "error": lambda rng: rng.choice(_ERRORS),
    "space": lambda rng: rng.choice(_SPACES),
}


def _fill(template: str, ctx: dict[str, Any], rng: random.Random) -> str:
    if "{" not in template:
        return template
    values = dict(ctx)
    for slot, draw in _RANDOM_SLOTS.items():
        if "{" + slot + "}" in template:
            values[slot] = draw(rng)
    if "ole" in template:
        values["role"], values["role_le"], values["role_au"] = rng.choice(_ROLES)
        values["Role_le"] = values["role_le"][0].upper() + values["role_le"][1:]
    return template.format(**values)


def _paragraph(rng: random.Random, ctx: dict[str, Any], pool: list[str], lo: int, hi: int) -> str:
    return " ".join(_fill(s, ctx, rng) for s in rng.sample(pool, rng.randint(lo, hi)))


def _synthetic_title(i: int, seed: int) -> tuple[str, str, str, dict[str, Any]]:
    rng = random.Random(f"kb-title-{seed}-{i}")
    category = rng.choice(list(_OBJECTS))
    obj, obj_de, gender, keywords = rng.choice(_OBJECTS[category])
    act, noun = rng.choice(_ACTIONS)
    qual = rng.choice(_QUALIFIERS).format(
        num=rng.randint(1000, 99999),
        uai=f"0{rng.randint(100000, 999999)}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}",
        cls=f"{rng.choice(['6e', '5e', '4e', '3e', '2nde', '1re', 'Tle'])} {rng.choice('ABCDEFG')}",
    )
    ctx = {
        "obj": obj,
        "obj_de": obj_de,
        "act": act,
        "Noun": noun,
        "problem": rng.choice(_PROBLEMS[gender]),
        "qual": qual,
        "keywords": keywords,
    }
    title = rng.choice(_TITLES).format(**ctx)
    while len(title) > 90:  # kb warns about titles too long to read at a glance
        ctx["qual"] = ""
        title = rng.choice(_TITLES).format(**ctx)
    title = title[0].upper() + title[1:]
    slug = f"{slugify(title)[:70].rstrip('-')}-{i + 1}"
    return category, slug, title, ctx


def generate(n: int, dest: Path, seed: int = 0) -> int:
    """Write a deterministic synthetic French help center of ``n`` articles into ``dest``.

    Article ``i`` depends only on ``(seed, i)``, so ``generate(1000)`` is a prefix of
    ``generate(5000)``. Bodies have 150-600 words, ``##`` headings, numbered and bulleted
    lists, notes, and relative links to earlier articles.
    """
    dest = Path(dest)
    for cat, (title, order, description) in _CATEGORY_INFO.items():
        write_category(dest / cat, title, order, description)
    heads = [_synthetic_title(i, seed) for i in range(n)]
    for i, (category, slug, title, ctx) in enumerate(heads):
        rng = random.Random(f"kb-body-{seed}-{i}")
        target = rng.randint(150, 600)
        blocks = [_paragraph(rng, ctx, _INTRO, 2, 4)]
        words = len(blocks[0].split())
        headings = rng.sample(_HEADINGS, len(_HEADINGS))
        while words < target and headings:
            section = [f"## {_fill(headings.pop(), ctx, rng)}"]
            kind = rng.random()
            if kind < 0.35:
                steps = rng.sample(_STEPS, rng.randint(3, 6))
                section.append(_paragraph(rng, ctx, _SENTENCES, 1, 2))
                section.append(
                    "\n".join(f"{k}. {_fill(s, ctx, rng)}" for k, s in enumerate(steps, 1))
                )
            elif kind < 0.55:
                section.append("Vérifiez d'abord que :")
                section.append(
                    "\n".join(
                        f"- {_fill(b, ctx, rng)}" for b in rng.sample(_BULLETS, rng.randint(2, 5))
                    )
                )
                section.append(_paragraph(rng, ctx, _SENTENCES, 1, 3))
            else:
                section.append(_paragraph(rng, ctx, _SENTENCES, 2, 5))
                if rng.random() < 0.3:
                    section.append(f"> **Note :** {_fill(rng.choice(_NOTES), ctx, rng)}")
            if i and rng.random() < 0.25:
                j = rng.randrange(i)
                other_cat, other_slug, other_title, _ = heads[j]
                section.append(
                    f"Voir aussi : [{other_title}]"
                    f"({relative_link(category, other_cat, other_slug)})."
                )
            text = "\n\n".join(section)
            count = len(text.split())
            if words + count > 600 and words >= 150:
                break
            blocks.append(text)
            words += count
        meta: dict[str, Any] = {
            "title": title,
            "summary": _fill(rng.choice(_INTRO), ctx, rng),
            "keywords": rng.sample(ctx["keywords"], rng.randint(1, len(ctx["keywords"]))),
        }
        if i > 0 and rng.random() < 0.3:
            meta["related"] = sorted({heads[rng.randrange(i)][1] for _ in range(rng.randint(1, 3))})
        if i < 3:
            meta["featured"] = i + 1
        if rng.random() < 0.2:
            meta["order"] = rng.randint(1, 20)
        if rng.random() < 0.02:
            meta["aliases"] = [f"{slug}-ancien"]
        meta["updated"] = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(900))
        write_article(dest / category / f"{slug}.md", meta, "\n\n".join(blocks))
    return n
