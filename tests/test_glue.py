# coding=utf-8
"""glue.py on small files written in each task's real format.

Headers and column layouts are copied from the real GLUE files (../shared/glue)
or, for QQP, MNLI and XNLI (not in shared/), from their documented official
formats. Every split of every task is read and compared column by column with
hand-written expectations, so a wrong column index shows up as a wrong text.
"""

import logging
import os
import re

import numpy as np
import pytest

from adapter_bert import glue

BOM = u"\ufeff"

# ----------------------------------------------------------------- headers

MRPC_HEADER = [BOM + "Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
MRPC_TEST_HEADER = ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1",
               "source2", "sentence1", "sentence2", "score"]
QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
MNLI_PARSES = ["sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse"]
MNLI_TRAIN_HEADER = (["index", "promptID", "pairID", "genre"] + MNLI_PARSES +
                     ["sentence1", "sentence2", "label1", "gold_label"])
MNLI_DEV_HEADER = (["index", "promptID", "pairID", "genre"] + MNLI_PARSES +
                   ["sentence1", "sentence2", "label1", "label2", "label3",
                    "label4", "label5", "gold_label"])
MNLI_TEST_HEADER = (["index", "promptID", "pairID", "genre"] + MNLI_PARSES +
                    ["sentence1", "sentence2"])
XNLI_HEADER = (["language", "gold_label"] + MNLI_PARSES +
               ["sentence1", "sentence2", "promptID", "pairID", "genre",
                "label1", "label2", "label3", "label4", "label5"])
PAIR_HEADER = ["index", "sentence1", "sentence2", "label"]
QNLI_HEADER = ["index", "question", "sentence", "label"]


def _stsb(index, genre, s1, s2, *score):
  return [index, genre, "MSRvid", "2012test", "00%s" % index, "none", "none",
          s1, s2] + list(score)


def _mnli(index, genre, s1, s2, *labels):
  parses = ["( ( %s ) )" % s1.split()[0], "( ( %s ) )" % s2.split()[0],
            "(ROOT (S (NP %s)))" % s1.split()[0],
            "(ROOT (S (NP %s)))" % s2.split()[0]]
  return [index, "3119%s" % index, "3119%sn" % index, genre] + parses + [
      s1, s2] + list(labels)


def _xnli(language, gold, s1, s2, index, *labels):
  parses = ["( %s )" % s1.split()[0], "( %s )" % s2.split()[0],
            "(ROOT %s)" % s1.split()[0], "(ROOT %s)" % s2.split()[0]]
  return [language, gold] + parses + [s1, s2, index, index + "e", "fiction"
                                      ] + list(labels)


# relative path -> (header columns or None, data rows). Paths are relative to
# the folder that holds glue_data's task folders (and XNLI's).
FILES = {
    # CoLA train/dev have no header: source, label, original mark, sentence.
    "CoLA/train.tsv": (None, [
        ["gj04", "1", "", "Our friends won't buy this analysis."],
        ["gj04", "0", "*", "They drank the pub."],
        ["clc95", "1", "", 'He said "so long.'],
    ]),
    "CoLA/dev.tsv": (None, [
        ["gj04", "1", "", "The sailors rode the breeze clear of the rocks."],
        ["gj04", "0", "*", "The more you eat, the fatter."],
    ]),
    "CoLA/test.tsv": (["index", "sentence"], [
        ["0", "Bill whistled past the house."],
        ["1", "The car honked its way down the road."],
    ]),
    "SST-2/train.tsv": (["sentence", "label"], [
        ["hide new secretions from the parental units ", "0"],
        ["the greatest musicians ", "1"],
        ['a " stray quote ', "1"],
    ]),
    "SST-2/dev.tsv": (["sentence", "label"], [
        ["it 's a charming and often affecting journey . ", "1"],
        ["unflinchingly bleak and desperate ", "0"],
    ]),
    "SST-2/test.tsv": (["index", "sentence"], [
        ["0", "uneasy mishmash of styles and genres ."],
        ["1", "a poor -- if durable -- imitation ."],
    ]),
    "MRPC/train.tsv": (MRPC_HEADER, [
        ["1", "702876", "702977", 'He called " the witness " , a liar .',
         'Referring to him as " the witness " .'],
        ["0", "2108705", "2108831", "Yucaipa owned Dominick 's .",
         "Yucaipa bought Dominick 's in 1995 ."],
    ]),
    "MRPC/dev.tsv": (MRPC_HEADER, [
        ["1", "1355540", "1355592", "He said the pie business doesn 't fit .",
         '" The pie business does not fit our strategy .'],
        ["0", "2029631", "2029565", "Magnarelli said Racicot hated it .",
         "His wife said he was behind it ."],
    ]),
    "MRPC/test.tsv": (MRPC_TEST_HEADER, [
        ["0", "1089874", "1089925", "PCCW 's chief will report to Mr So .",
         "Mike Butcher will report to So ."],
        ["1", "3019446", "3019327", "The automakers said sales declined .",
         "Domestic sales at both GM and Ford declined ."],
    ]),
    "STS-B/train.tsv": (STSB_HEADER, [
        _stsb("0", "main-captions", "A plane is taking off.",
              "An air plane is taking off.", "5.000"),
        _stsb("1", "main-captions", "A man is playing a large flute.",
              "A man is playing a flute.", "3.800"),
        _stsb("2", "main-news", 'He said "no.', "He refused.", "0.500"),
    ]),
    "STS-B/dev.tsv": (STSB_HEADER, [
        _stsb("0", "main-captions", "A man with a hard hat is dancing.",
              "A man wearing a hard hat is dancing.", "5.000"),
        _stsb("1", "main-captions", "A young child is riding a horse.",
              "A child is riding a horse.", "4.750"),
    ]),
    "STS-B/test.tsv": (STSB_HEADER[:-1], [
        _stsb("0", "main-captions", "A girl is styling her hair.",
              "A girl is brushing her hair."),
        _stsb("1", "main-captions", "A group of men play soccer.",
              "A group of boys are playing soccer."),
    ]),
    "QQP/train.tsv": (QQP_HEADER, [
        ["133273", "213221", "213222", "How is the life of a math student?",
         "Which level of preparation is enough for JLPT5?", "0"],
        ["402555", "536040", "536041", "How do I control my emotions?",
         "How do you control your emotions?", "1"],
    ]),
    "QQP/dev.tsv": (QQP_HEADER, [
        ["201359", "303345", "303346", "Why are cats so beautiful?",
         "Why are dogs so beautiful?", "0"],
        ["263843", "69383", "380476", "What is a good first language?",
         "Which programming language should I learn first?", "1"],
    ]),
    "QQP/test.tsv": (["id", "question1", "question2"], [
        ["0", "How does the Surface Pro 4 compare with iPad Pro?",
         "Why did Microsoft choose core m3?"],
        ["1", "Should I have a hair transplant at age 24?",
         "How much does a hair transplant cost?"],
    ]),
    "MNLI/train.tsv": (MNLI_TRAIN_HEADER, [
        _mnli("0", "government", "Conceptually cream skimming has two dimensions.",
              "Product and geography make cream skimming work.",
              "neutral", "neutral"),
        _mnli("1", "telephone", "you know during the season i guess",
              "You lose the things to the following level.",
              "entailment", "entailment"),
        _mnli("2", "fiction", "One of our number will carry out your instructions.",
              "We have no one free at the moment.",
              "contradiction", "contradiction"),
    ]),
    # label1 differs from gold_label, so a wrong label column shows.
    "MNLI/dev_matched.tsv": (MNLI_DEV_HEADER, [
        _mnli("0", "slate", "The new rights are nice enough",
              "Everyone really likes the newest benefits",
              "entailment", "neutral", "neutral", "neutral", "contradiction",
              "neutral"),
        _mnli("1", "government", "This site includes a list of winners.",
              "The Government Executive articles are on the site.",
              "neutral", "entailment", "entailment", "entailment", "entailment",
              "entailment"),
    ]),
    "MNLI/dev_mismatched.tsv": (MNLI_DEV_HEADER, [
        _mnli("0", "letters", "Your contribution helped make it possible.",
              "Your contributions were of no help.",
              "neutral", "contradiction", "contradiction", "contradiction",
              "contradiction", "contradiction"),
    ]),
    "MNLI/test_matched.tsv": (MNLI_TEST_HEADER, [
        _mnli("0", "government", "Hierbas is a liqueur.", "Hierbas is a drink."),
        _mnli("1", "fiction", "The bar was closed.", "The bar was open."),
    ]),
    "MNLI/test_mismatched.tsv": (MNLI_TEST_HEADER, [
        _mnli("0", "nineeleven", "What have you decided?", "Did you decide?"),
    ]),
    "diagnostic/diagnostic.tsv": (["index", "sentence1", "sentence2"], [
        ["0", "The cat sat on the mat.", "The cat did not sit on the mat."],
        ["1", "The cat did not sit on the mat.", "The cat sat on the mat."],
    ]),
    "QNLI/train.tsv": (QNLI_HEADER, [
        ["0", "When did the third Digimon series begin?",
         "Unlike the two seasons before it, Digimon Tamers is darker.",
         "not_entailment"],
        ["1", "Which missile batteries often have individual launchers?",
         "Missile batteries often have launchers several kilometres apart.",
         "entailment"],
    ]),
    "QNLI/dev.tsv": (QNLI_HEADER, [
        ["0", "What came into force after the new constitution?",
         "As of that day, the new constitution came into force.",
         "entailment"],
        ["1", "What is the first major city on the Rhine?",
         'The most important tributaries are the "Ill.', "not_entailment"],
    ]),
    "QNLI/test.tsv": (QNLI_HEADER[:-1], [
        ["0", "What organization is devoted to Jihad?",
         'The Brotherhood took a "quiescent" stance.'],
        ["1", "In what century was the balancing system used?",
         "In the late 19th century, the system was used."],
    ]),
    "RTE/train.tsv": (PAIR_HEADER, [
        ["0", "No Weapons of Mass Destruction Found in Iraq Yet.",
         "Weapons of Mass Destruction Found in Iraq.", "not_entailment"],
        ["1", "A place of sorrow became a place of celebration.",
         "Pope Benedict XVI is the new leader.", "entailment"],
    ]),
    "RTE/dev.tsv": (PAIR_HEADER, [
        ["0", "Dana Reeve has died of lung cancer at age 44.",
         "Christopher Reeve had an accident.", "not_entailment"],
        ["1", "Bacteria are mutating faster than new antibiotics.",
         "Bacteria is winning the war against antibiotics.", "entailment"],
    ]),
    "RTE/test.tsv": (PAIR_HEADER[:-1], [
        ["0", "Mangla was summoned after Nidhi Shukla.",
         "Shukla is related to Mangla."],
        ["1", "More than 200 people are held hostage in Brazil.",
         "Authorities in Brazil hold 200 people as hostage."],
    ]),
    "WNLI/train.tsv": (PAIR_HEADER, [
        ["0", "I stuck a pin through a carrot. It had a hole.",
         "The carrot had a hole.", "1"],
        ["1", "John couldn't see the stage with Billy in front of him.",
         "Billy is so short.", "0"],
    ]),
    "WNLI/dev.tsv": (PAIR_HEADER, [
        ["0", "The drain is clogged with hair. It has to be cleaned.",
         "The hair has to be cleaned.", "0"],
        ["1", "Jane knocked on Susan's door but she did not answer.",
         "Susan did not answer.", "1"],
    ]),
    "WNLI/test.tsv": (PAIR_HEADER[:-1], [
        ["0", "Horses ran away when they came in sight.",
         "Horses ran away when Maude and Dora came in sight."],
        ["1", "Horses ran away when they came in sight.",
         "Horses ran away when the trains came in sight."],
    ]),
    # XNLI: translated MNLI train (premise, hypo, label; "contradictory").
    "XNLI/multinli/multinli.train.zh.tsv": (["premise", "hypo", "label"], [
        [u"从 概念 上 看 , 奶油 收入 有 两 个 基本 方面 。",
         u"产品 和 地理 是 什么 使 奶油 抹 霜 工作 。", "neutral"],
        [u"你 知道 在 这个 季节 , 我 猜 。", u"如果 人们 记得 的 话 。",
         "contradictory"],
        [u"我们 的 一个 号码 会 非常 详细 地 执行 你 的 指示 。",
         u"我 团队 的 一个 成员 将 执行 你 的 命令 。", "entailment"],
    ]),
    "XNLI/multinli/multinli.train.de.tsv": (["premise", "hypo", "label"], [
        ["Konzeptionell hat die Rahmenabnahme zwei Dimensionen .",
         "Produkt und Geographie sind das , was die Arbeit macht .",
         "contradictory"],
    ]),
    "XNLI/xnli.dev.tsv": (XNLI_HEADER, [
        _xnli("en", "neutral", "And he said, Mama, I'm home.",
              "He didn't say a word.", "1", "contradiction", "contradiction",
              "contradiction", "contradiction", "contradiction"),
        _xnli("zh", "contradiction", u"他 说 , 妈妈 , 我 回来 了 。",
              u"他 一句话 都 没 说 。", "1", "neutral", "contradiction",
              "contradiction", "contradiction", "contradiction"),
        _xnli("de", "entailment", "und er hat gesagt, Mama ich bin daheim.",
              "Er rief seine Mutter an.", "2", "entailment", "entailment",
              "neutral", "entailment", "entailment"),
        _xnli("zh", "neutral", u"我 不 知道 我 要 去 做 什么 。",
              u"我 从来 没有 去过 华盛顿 。", "3", "neutral", "neutral",
              "neutral", "entailment", "neutral"),
    ]),
    "XNLI/xnli.test.tsv": (XNLI_HEADER, [
        _xnli("zh", "entailment", u"嗯 , 我 甚至 没 想 过 。",
              u"我 非常 沮丧 , 我 又 开始 和 他 交谈 了 。", "1",
              "neutral", "entailment", "entailment", "entailment",
              "entailment"),
        _xnli("en", "neutral", "Well, I wasn't even thinking about that.",
              "I was so upset that I started talking to him again.", "1",
              "neutral", "neutral", "neutral", "neutral", "neutral"),
    ]),
}

# (task name, split name) -> (data_dir relative to the root, file path
# relative to the root). AX lives outside MNLI/, reached as MNLI/../diagnostic.
SPLIT_FILES = {
    ("CoLA", "train"): ("CoLA", "CoLA/train.tsv"),
    ("CoLA", "dev"): ("CoLA", "CoLA/dev.tsv"),
    ("CoLA", "CoLA"): ("CoLA", "CoLA/test.tsv"),
    ("SST-2", "train"): ("SST-2", "SST-2/train.tsv"),
    ("SST-2", "dev"): ("SST-2", "SST-2/dev.tsv"),
    ("SST-2", "SST-2"): ("SST-2", "SST-2/test.tsv"),
    ("MRPC", "train"): ("MRPC", "MRPC/train.tsv"),
    ("MRPC", "dev"): ("MRPC", "MRPC/dev.tsv"),
    ("MRPC", "MRPC"): ("MRPC", "MRPC/test.tsv"),
    ("STS-B", "train"): ("STS-B", "STS-B/train.tsv"),
    ("STS-B", "dev"): ("STS-B", "STS-B/dev.tsv"),
    ("STS-B", "STS-B"): ("STS-B", "STS-B/test.tsv"),
    ("QQP", "train"): ("QQP", "QQP/train.tsv"),
    ("QQP", "dev"): ("QQP", "QQP/dev.tsv"),
    ("QQP", "QQP"): ("QQP", "QQP/test.tsv"),
    ("MNLI", "train"): ("MNLI", "MNLI/train.tsv"),
    ("MNLI", "matched"): ("MNLI", "MNLI/dev_matched.tsv"),
    ("MNLI", "mismatched"): ("MNLI", "MNLI/dev_mismatched.tsv"),
    ("MNLI", "MNLI-m"): ("MNLI", "MNLI/test_matched.tsv"),
    ("MNLI", "MNLI-mm"): ("MNLI", "MNLI/test_mismatched.tsv"),
    ("MNLI", "AX"): ("MNLI", "diagnostic/diagnostic.tsv"),
    ("QNLI", "train"): ("QNLI", "QNLI/train.tsv"),
    ("QNLI", "dev"): ("QNLI", "QNLI/dev.tsv"),
    ("QNLI", "QNLI"): ("QNLI", "QNLI/test.tsv"),
    ("RTE", "train"): ("RTE", "RTE/train.tsv"),
    ("RTE", "dev"): ("RTE", "RTE/dev.tsv"),
    ("RTE", "RTE"): ("RTE", "RTE/test.tsv"),
    ("WNLI", "train"): ("WNLI", "WNLI/train.tsv"),
    ("WNLI", "dev"): ("WNLI", "WNLI/dev.tsv"),
    ("WNLI", "WNLI"): ("WNLI", "WNLI/test.tsv"),
    ("XNLI", "train"): ("XNLI", "XNLI/multinli/multinli.train.zh.tsv"),
    ("XNLI", "dev"): ("XNLI", "XNLI/xnli.dev.tsv"),
    ("XNLI", "test"): ("XNLI", "XNLI/xnli.test.tsv"),
}

# (task, split) -> [(text_a, text_b, label, index)], written out by hand.
# Test splits have no label: they carry the task's placeholder (checked apart).
EXPECTED = {
    ("CoLA", "train"): [
        ("Our friends won't buy this analysis.", None, "1", None),
        ("They drank the pub.", None, "0", None),
        ('He said "so long.', None, "1", None)],
    ("CoLA", "dev"): [
        ("The sailors rode the breeze clear of the rocks.", None, "1", None),
        ("The more you eat, the fatter.", None, "0", None)],
    ("CoLA", "CoLA"): [
        ("Bill whistled past the house.", None, None, "0"),
        ("The car honked its way down the road.", None, None, "1")],
    ("SST-2", "train"): [
        ("hide new secretions from the parental units ", None, "0", None),
        ("the greatest musicians ", None, "1", None),
        ('a " stray quote ', None, "1", None)],
    ("SST-2", "dev"): [
        ("it 's a charming and often affecting journey . ", None, "1", None),
        ("unflinchingly bleak and desperate ", None, "0", None)],
    ("SST-2", "SST-2"): [
        ("uneasy mishmash of styles and genres .", None, None, "0"),
        ("a poor -- if durable -- imitation .", None, None, "1")],
    ("MRPC", "train"): [
        ('He called " the witness " , a liar .',
         'Referring to him as " the witness " .', "1", None),
        ("Yucaipa owned Dominick 's .", "Yucaipa bought Dominick 's in 1995 .",
         "0", None)],
    ("MRPC", "dev"): [
        ("He said the pie business doesn 't fit .",
         '" The pie business does not fit our strategy .', "1", None),
        ("Magnarelli said Racicot hated it .",
         "His wife said he was behind it .", "0", None)],
    ("MRPC", "MRPC"): [
        ("PCCW 's chief will report to Mr So .",
         "Mike Butcher will report to So .", None, "0"),
        ("The automakers said sales declined .",
         "Domestic sales at both GM and Ford declined .", None, "1")],
    ("STS-B", "train"): [
        ("A plane is taking off.", "An air plane is taking off.", 5.0, None),
        ("A man is playing a large flute.", "A man is playing a flute.", 3.8,
         None),
        ('He said "no.', "He refused.", 0.5, None)],
    ("STS-B", "dev"): [
        ("A man with a hard hat is dancing.",
         "A man wearing a hard hat is dancing.", 5.0, None),
        ("A young child is riding a horse.", "A child is riding a horse.",
         4.75, None)],
    ("STS-B", "STS-B"): [
        ("A girl is styling her hair.", "A girl is brushing her hair.", None,
         "0"),
        ("A group of men play soccer.", "A group of boys are playing soccer.",
         None, "1")],
    ("QQP", "train"): [
        ("How is the life of a math student?",
         "Which level of preparation is enough for JLPT5?", "0", None),
        ("How do I control my emotions?", "How do you control your emotions?",
         "1", None)],
    ("QQP", "dev"): [
        ("Why are cats so beautiful?", "Why are dogs so beautiful?", "0",
         None),
        ("What is a good first language?",
         "Which programming language should I learn first?", "1", None)],
    ("QQP", "QQP"): [
        ("How does the Surface Pro 4 compare with iPad Pro?",
         "Why did Microsoft choose core m3?", None, "0"),
        ("Should I have a hair transplant at age 24?",
         "How much does a hair transplant cost?", None, "1")],
    ("MNLI", "train"): [
        ("Conceptually cream skimming has two dimensions.",
         "Product and geography make cream skimming work.", "neutral", None),
        ("you know during the season i guess",
         "You lose the things to the following level.", "entailment", None),
        ("One of our number will carry out your instructions.",
         "We have no one free at the moment.", "contradiction", None)],
    ("MNLI", "matched"): [
        ("The new rights are nice enough",
         "Everyone really likes the newest benefits", "neutral", None),
        ("This site includes a list of winners.",
         "The Government Executive articles are on the site.", "entailment",
         None)],
    ("MNLI", "mismatched"): [
        ("Your contribution helped make it possible.",
         "Your contributions were of no help.", "contradiction", None)],
    ("MNLI", "MNLI-m"): [
        ("Hierbas is a liqueur.", "Hierbas is a drink.", None, "0"),
        ("The bar was closed.", "The bar was open.", None, "1")],
    ("MNLI", "MNLI-mm"): [
        ("What have you decided?", "Did you decide?", None, "0")],
    ("MNLI", "AX"): [
        ("The cat sat on the mat.", "The cat did not sit on the mat.", None,
         "0"),
        ("The cat did not sit on the mat.", "The cat sat on the mat.", None,
         "1")],
    ("QNLI", "train"): [
        ("When did the third Digimon series begin?",
         "Unlike the two seasons before it, Digimon Tamers is darker.",
         "not_entailment", None),
        ("Which missile batteries often have individual launchers?",
         "Missile batteries often have launchers several kilometres apart.",
         "entailment", None)],
    ("QNLI", "dev"): [
        ("What came into force after the new constitution?",
         "As of that day, the new constitution came into force.",
         "entailment", None),
        ("What is the first major city on the Rhine?",
         'The most important tributaries are the "Ill.', "not_entailment",
         None)],
    ("QNLI", "QNLI"): [
        ("What organization is devoted to Jihad?",
         'The Brotherhood took a "quiescent" stance.', None, "0"),
        ("In what century was the balancing system used?",
         "In the late 19th century, the system was used.", None, "1")],
    ("RTE", "train"): [
        ("No Weapons of Mass Destruction Found in Iraq Yet.",
         "Weapons of Mass Destruction Found in Iraq.", "not_entailment",
         None),
        ("A place of sorrow became a place of celebration.",
         "Pope Benedict XVI is the new leader.", "entailment", None)],
    ("RTE", "dev"): [
        ("Dana Reeve has died of lung cancer at age 44.",
         "Christopher Reeve had an accident.", "not_entailment", None),
        ("Bacteria are mutating faster than new antibiotics.",
         "Bacteria is winning the war against antibiotics.", "entailment",
         None)],
    ("RTE", "RTE"): [
        ("Mangla was summoned after Nidhi Shukla.",
         "Shukla is related to Mangla.", None, "0"),
        ("More than 200 people are held hostage in Brazil.",
         "Authorities in Brazil hold 200 people as hostage.", None, "1")],
    ("WNLI", "train"): [
        ("I stuck a pin through a carrot. It had a hole.",
         "The carrot had a hole.", "1", None),
        ("John couldn't see the stage with Billy in front of him.",
         "Billy is so short.", "0", None)],
    ("WNLI", "dev"): [
        ("The drain is clogged with hair. It has to be cleaned.",
         "The hair has to be cleaned.", "0", None),
        ("Jane knocked on Susan's door but she did not answer.",
         "Susan did not answer.", "1", None)],
    ("WNLI", "WNLI"): [
        ("Horses ran away when they came in sight.",
         "Horses ran away when Maude and Dora came in sight.", None, "0"),
        ("Horses ran away when they came in sight.",
         "Horses ran away when the trains came in sight.", None, "1")],
    ("XNLI", "train"): [
        (u"从 概念 上 看 , 奶油 收入 有 两 个 基本 方面 。",
         u"产品 和 地理 是 什么 使 奶油 抹 霜 工作 。", "neutral", None),
        (u"你 知道 在 这个 季节 , 我 猜 。", u"如果 人们 记得 的 话 。",
         "contradiction", None),
        (u"我们 的 一个 号码 会 非常 详细 地 执行 你 的 指示 。",
         u"我 团队 的 一个 成员 将 执行 你 的 命令 。", "entailment", None)],
    ("XNLI", "dev"): [
        (u"他 说 , 妈妈 , 我 回来 了 。", u"他 一句话 都 没 说 。",
         "contradiction", None),
        (u"我 不 知道 我 要 去 做 什么 。", u"我 从来 没有 去过 华盛顿 。",
         "neutral", None)],
    ("XNLI", "test"): [
        (u"嗯 , 我 甚至 没 想 过 。", u"我 非常 沮丧 , 我 又 开始 和 他 交谈 了 。",
         "entailment", None)],
}


# ----------------------------------------------------------------- helpers

def _write_file(root, rel_path, header, rows, newline="\n"):
  path = os.path.join(str(root), rel_path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  lines = ([] if header is None else ["\t".join(header)]) + [
      "\t".join(row) for row in rows]
  with open(path, "w", encoding="utf-8", newline="") as f:
    f.write("".join(line + newline for line in lines))
  return path


def _write_lines(path, lines):
  with open(path, "w", encoding="utf-8", newline="") as f:
    f.write("".join(line + "\n" for line in lines))


def _read_lines(path):
  with open(path, encoding="utf-8", newline="") as f:
    return f.read().split("\n")[:-1]


def _split(task, split_name):
  for split in (task.train,) + tuple(task.dev) + tuple(task.test):
    if split.name == split_name:
      return split
  raise AssertionError("%s has no split %r" % (task.name, split_name))


def _all_splits(task):
  return [task.train] + list(task.dev) + list(task.test)


def _is_test(task, split):
  return split in task.test and split.label_column is None


@pytest.fixture
def glue_root(tmp_path, monkeypatch):
  """Every FILES entry written under tmp_path; XNLI's language set to zh."""
  for rel_path, (header, rows) in FILES.items():
    _write_file(tmp_path, rel_path, header, rows)
  monkeypatch.setattr(glue.get_task("xnli"), "language", "zh")
  return str(tmp_path)


def _read(root, task_name, split_name):
  task = glue.get_task(task_name)
  data_dir, _ = SPLIT_FILES[(task_name, split_name)]
  return task.read_examples(os.path.join(root, data_dir),
                            _split(task, split_name))


def _file_and_line(root, task_name, split_name, data_row):
  """The path glue names for a split, and the file line of a data row."""
  task = glue.get_task(task_name)
  data_dir, rel_path = SPLIT_FILES[(task_name, split_name)]
  header, _ = FILES[rel_path]
  path = task.path(os.path.join(root, data_dir), _split(task, split_name))
  return path, os.path.join(root, rel_path), data_row + 1 + (header is not None)


def _rewrite(root, rel_path, rows):
  header, _ = FILES[rel_path]
  _write_file(root, rel_path, header, rows)


def _error_names(excinfo, path, line):
  message = str(excinfo.value)
  assert "%s:%d:" % (path, line) in message, message
  return message


# ------------------------------------------------------- every split read

def test_every_split_of_every_task_has_a_case():
  cases = set(SPLIT_FILES)
  for task in glue.TASKS.values():
    for split in _all_splits(task):
      assert (task.name, split.name) in cases, (task.name, split.name)
  assert set(EXPECTED) == cases


@pytest.mark.parametrize("task_name, split_name", sorted(EXPECTED),
                         ids=["%s-%s" % key for key in sorted(EXPECTED)])
def test_reads_texts_labels_and_indices_from_the_right_columns(
    glue_root, task_name, split_name):
  task = glue.get_task(task_name)
  split = _split(task, split_name)
  examples = _read(glue_root, task_name, split_name)
  expected = EXPECTED[(task_name, split_name)]
  got = [(e.text_a, e.text_b, None if _is_test(task, split) else e.label,
          e.index) for e in examples]
  assert got == expected
  assert len(set(e.guid for e in examples)) == len(examples)
  for e in examples:
    if _is_test(task, split):
      # No label in a test file: a placeholder of the right type.
      if task.is_regression:
        assert isinstance(e.label, float)
      else:
        assert e.label in task.labels
    elif task.is_regression:
      assert type(e.label) is float
    else:
      assert e.label in task.labels


def test_test_splits_have_an_index_and_train_dev_do_not(glue_root):
  for task in glue.TASKS.values():
    for split in _all_splits(task):
      has_index = split.index_column is not None
      if task.name == "XNLI":
        assert not has_index  # XNLI test has labels, no submission
      else:
        assert has_index == (split in task.test), (task.name, split.name)


def test_get_examples_use_the_first_splits(glue_root):
  mnli = glue.get_task("MNLI")
  data_dir = os.path.join(glue_root, "MNLI")
  assert [e.text_a for e in mnli.get_train_examples(data_dir)] == [
      t[0] for t in EXPECTED[("MNLI", "train")]]
  assert [e.text_a for e in mnli.get_dev_examples(data_dir)] == [
      t[0] for t in EXPECTED[("MNLI", "matched")]]
  assert [e.index for e in mnli.get_test_examples(data_dir)] == ["0", "1"]
  assert [e.text_a for e in mnli.get_test_examples(data_dir)] == [
      t[0] for t in EXPECTED[("MNLI", "MNLI-m")]]


def test_mnli_splits_and_files():
  mnli = glue.get_task("mnli")
  assert [s.name for s in mnli.dev] == ["matched", "mismatched"]
  assert [s.name for s in mnli.test] == ["MNLI-m", "MNLI-mm", "AX"]
  assert mnli.path("/g/MNLI", mnli.test[2]) == os.path.join(
      "/g", "diagnostic", "diagnostic.tsv")
  assert os.path.normpath(mnli.path("/g/MNLI", mnli.test[2])) == (
      os.path.normpath("/g/diagnostic/diagnostic.tsv"))


def test_ax_is_read_when_the_mnli_folder_does_not_exist(tmp_path):
  # Only glue_data/diagnostic/ exists: the path <glue>/MNLI/../diagnostic/...
  # has a missing component. os.path.exists says no (the kernel resolves MNLI
  # first); glue reads through tf.io.gfile, which cleans the path lexically.
  header, rows = FILES["diagnostic/diagnostic.tsv"]
  _write_file(tmp_path, "diagnostic/diagnostic.tsv", header, rows)
  mnli = glue.get_task("MNLI")
  data_dir = os.path.join(str(tmp_path), "MNLI")
  assert not os.path.exists(data_dir)
  examples = mnli.read_examples(data_dir, _split(mnli, "AX"))
  assert [(e.text_a, e.text_b, e.index) for e in examples] == [
      (a, b, i) for (a, b, _, i) in EXPECTED[("MNLI", "AX")]]


# ------------------------------------------------------------- task names

@pytest.mark.parametrize("name, expected", [
    ("sts-b", "STS-B"), ("STS-B", "STS-B"), ("stsb", "STS-B"),
    ("STSB", "STS-B"), ("sts_b", "STS-B"),
    ("SST-2", "SST-2"), ("sst2", "SST-2"), ("sst-2", "SST-2"),
    ("cola", "CoLA"), ("CoLA", "CoLA"), ("mnli", "MNLI"), ("MNLI", "MNLI"),
    ("Qqp", "QQP"), ("mrpc", "MRPC"), ("qnli", "QNLI"), ("rte", "RTE"),
    ("wnli", "WNLI"), ("xnli", "XNLI"),
])
def test_task_names_are_case_and_dash_insensitive(name, expected):
  task = glue.get_task(name)
  assert task.name == expected
  assert task is glue.get_task(expected)


@pytest.mark.parametrize("name", ["glue", "sts-c", "mnli-m", ""])
def test_unknown_task_names_the_flag(name):
  with pytest.raises(glue.InputError, match=re.escape("--task_name=%s" % name)):
    glue.get_task(name)


# -------------------------------------------------------- label properties

def test_stsb_is_regression_with_one_output(glue_root):
  task = glue.get_task("STS-B")
  assert task.is_regression
  assert task.num_labels == 1
  assert task.get_labels() == []
  labels = [e.label for e in _read(glue_root, "STS-B", "train")]
  assert labels == [5.0, 3.8, 0.5]
  assert all(type(label) is float for label in labels)


@pytest.mark.parametrize("name, labels", [
    ("CoLA", ["0", "1"]), ("SST-2", ["0", "1"]), ("MRPC", ["0", "1"]),
    ("QQP", ["0", "1"]), ("WNLI", ["0", "1"]),
    ("MNLI", ["contradiction", "entailment", "neutral"]),
    ("XNLI", ["contradiction", "entailment", "neutral"]),
    ("QNLI", ["entailment", "not_entailment"]),
    ("RTE", ["entailment", "not_entailment"]),
])
def test_classification_labels(name, labels):
  task = glue.get_task(name)
  assert not task.is_regression
  assert task.get_labels() == labels
  assert task.num_labels == len(labels)


@pytest.mark.parametrize("score", ["five", "", "4,5", "n/a"])
def test_stsb_non_numeric_score_names_file_and_line(glue_root, score):
  rows = [list(r) for r in FILES["STS-B/train.tsv"][1]]
  rows[1][9] = score
  _rewrite(glue_root, "STS-B/train.tsv", rows)
  path, _, line = _file_and_line(glue_root, "STS-B", "train", 1)
  with pytest.raises(glue.InputError) as excinfo:
    _read(glue_root, "STS-B", "train")
  _error_names(excinfo, path, line)
  assert repr(score) in str(excinfo.value)


@pytest.mark.parametrize("score", ["nan", "NaN", "inf", "-inf"])
def test_stsb_nan_or_infinite_score_is_an_input_error(glue_root, score):
  """float() accepts "nan"/"inf", so such a score is read as a label today.

  A NaN label makes the STS-B loss NaN in training and Pearson/Spearman NaN
  in eval (metrics.py promises never NaN); it is as bad as "five".
  """
  rows = [list(r) for r in FILES["STS-B/dev.tsv"][1]]
  rows[0][9] = score
  _rewrite(glue_root, "STS-B/dev.tsv", rows)
  path, _, line = _file_and_line(glue_root, "STS-B", "dev", 0)
  with pytest.raises(glue.InputError) as excinfo:
    _read(glue_root, "STS-B", "dev")
  _error_names(excinfo, path, line)


LABELED_SPLITS = sorted(key for key in SPLIT_FILES
                        if key[0] != "STS-B" and
                        _split(glue.get_task(key[0]), key[1]).label_column
                        is not None)


@pytest.mark.parametrize("task_name, split_name", LABELED_SPLITS,
                         ids=["%s-%s" % key for key in LABELED_SPLITS])
@pytest.mark.parametrize("bad_label", ["2", "positive", "Entailment"])
def test_unknown_label_names_file_and_line(glue_root, task_name, split_name,
                                           bad_label):
  task = glue.get_task(task_name)
  split = _split(task, split_name)
  _, rel_path = SPLIT_FILES[(task_name, split_name)]
  rows = [list(r) for r in FILES[rel_path][1]]
  # The last data row in XNLI dev/test that is in the task's language (zh).
  target = max(i for (i, r) in enumerate(rows)
               if task_name != "XNLI" or split_name == "train" or r[0] == "zh")
  rows[target][split.label_column] = bad_label
  _rewrite(glue_root, rel_path, rows)
  path, _, line = _file_and_line(glue_root, task_name, split_name, target)
  with pytest.raises(glue.InputError) as excinfo:
    _read(glue_root, task_name, split_name)
  message = _error_names(excinfo, path, line)
  assert repr(bad_label) in message


# ------------------------------------------------ quotes, BOM, line ends

def test_unbalanced_quotes_are_text_and_do_not_swallow_rows(tmp_path):
  header = ["sentence", "label"]
  rows = [['he said " hi ', "1"], ["next row ", "0"], ['" ', "1"],
          ['""quoted"" ', "0"]]
  _write_file(tmp_path, "SST-2/train.tsv", header, rows)
  examples = glue.get_task("SST-2").get_train_examples(
      str(tmp_path / "SST-2"))
  assert [(e.text_a, e.label) for e in examples] == [tuple(r) for r in rows]


def test_mrpc_bom_header(glue_root):
  path = os.path.join(glue_root, "MRPC", "train.tsv")
  with open(path, "rb") as f:
    assert f.read(3) == b"\xef\xbb\xbf"  # written as the real file has it
  rows = glue.read_tsv(path)
  assert rows[0][2][0] == "Quality"  # BOM gone
  examples = _read(glue_root, "MRPC", "train")
  assert len(examples) == 2
  for e in examples:
    assert BOM not in e.text_a + e.text_b + e.label


def test_bom_on_a_headerless_cola_file_is_stripped(tmp_path):
  _write_file(tmp_path, "CoLA/train.tsv", None,
              [[BOM + "gj04", "1", "", "Fine."]])
  rows = glue.read_tsv(str(tmp_path / "CoLA" / "train.tsv"))
  assert rows[0][2][0] == "gj04"


def test_crlf_line_ends_and_blank_lines(tmp_path):
  header, rows = FILES["RTE/train.tsv"]
  path = _write_file(tmp_path, "RTE/train.tsv", header, rows, newline="\r\n")
  with open(path, "a", newline="") as f:
    f.write("\r\n\r\n")
  examples = glue.get_task("RTE").get_train_examples(str(tmp_path / "RTE"))
  assert [(e.text_a, e.text_b, e.label) for e in examples] == [
      (a, b, c) for (a, b, c, _) in EXPECTED[("RTE", "train")]]


def test_line_numbers_count_blank_lines(tmp_path):
  path = str(tmp_path / "WNLI" / "dev.tsv")
  os.makedirs(os.path.dirname(path))
  _write_lines(path, ["\t".join(PAIR_HEADER), "0\ta\tb\t1", "", "1\ta\tb\t7"])
  with pytest.raises(glue.InputError, match=re.escape("%s:4:" % path)):
    glue.get_task("WNLI").get_dev_examples(os.path.dirname(path))


def test_missing_file_is_an_input_error(tmp_path):
  with pytest.raises(glue.InputError, match="no such file") as excinfo:
    glue.get_task("RTE").get_train_examples(str(tmp_path))
  assert os.path.join(str(tmp_path), "train.tsv") in str(excinfo.value)


def test_non_utf8_names_file_and_line(tmp_path):
  path = tmp_path / "train.tsv"
  path.write_bytes(b"sentence\tlabel\nok\t1\ncaf\xe9\t0\n")
  with pytest.raises(glue.InputError,
                     match=re.escape("%s:3: not UTF-8" % path)):
    glue.get_task("SST-2").get_train_examples(str(tmp_path))


# ------------------------------------------------------------ short rows

STRICT_SPLITS = sorted(key for key in SPLIT_FILES if key[0] in (
    "CoLA", "SST-2", "MRPC", "STS-B", "QNLI", "RTE", "WNLI"))


@pytest.mark.parametrize("task_name, split_name", STRICT_SPLITS,
                         ids=["%s-%s" % key for key in STRICT_SPLITS])
def test_short_row_names_path_and_line(glue_root, task_name, split_name):
  _, rel_path = SPLIT_FILES[(task_name, split_name)]
  rows = [list(r) for r in FILES[rel_path][1]]
  rows.insert(1, rows[0][:-1])  # the last column is lost (a used column)
  _rewrite(glue_root, rel_path, rows)
  path, _, line = _file_and_line(glue_root, task_name, split_name, 1)
  with pytest.raises(glue.InputError) as excinfo:
    _read(glue_root, task_name, split_name)
  message = _error_names(excinfo, path, line)
  assert "columns" in message


def test_one_column_row_names_path_and_line(glue_root):
  rows = [list(r) for r in FILES["QNLI/dev.tsv"][1]] + [["7"]]
  _rewrite(glue_root, "QNLI/dev.tsv", rows)
  path, _, line = _file_and_line(glue_root, "QNLI", "dev", 2)
  with pytest.raises(glue.InputError) as excinfo:
    _read(glue_root, "QNLI", "dev")
  _error_names(excinfo, path, line)
  assert "found 1" in str(excinfo.value)


LENIENT_SPLITS = sorted(key for key in SPLIT_FILES if key[0] in ("QQP", "MNLI"))


@pytest.mark.parametrize("task_name, split_name", LENIENT_SPLITS,
                         ids=["%s-%s" % key for key in LENIENT_SPLITS])
def test_qqp_mnli_skip_rows_whose_column_count_differs(
    glue_root, caplog, task_name, split_name):
  task = glue.get_task(task_name)
  split = _split(task, split_name)
  _, rel_path = SPLIT_FILES[(task_name, split_name)]
  rows = [list(r) for r in FILES[rel_path][1]]
  t = split.text_a_column
  broken = list(rows[0])
  # A question cut by a stray newline: two lines, neither with all columns.
  first_half = broken[:t] + [broken[t][:5]]
  second_half = [broken[t][5:]] + broken[t + 1:]
  # A stray tab inside a text: one column too many.
  extra_tab = list(rows[0])
  extra_tab[t] = extra_tab[t].replace(" ", "\t", 1)
  rows = [rows[0], first_half, second_half] + rows[1:] + [extra_tab]
  _rewrite(glue_root, rel_path, rows)
  header_lines = 1
  bad_lines = [header_lines + 2, header_lines + 3, header_lines + len(rows)]

  caplog.set_level(logging.WARNING)
  examples = _read(glue_root, task_name, split_name)

  expected = EXPECTED[(task_name, split_name)]
  assert len(examples) == len(expected)
  assert [e.text_a for e in examples] == [t[0] for t in expected]
  path, _, _ = _file_and_line(glue_root, task_name, split_name, 0)
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and path in r.getMessage()]
  assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
  assert "skipped 3 malformed rows" in warnings[0]
  assert ", ".join(str(n) for n in bad_lines) in warnings[0]


def test_qqp_skipping_is_silent_when_nothing_is_skipped(glue_root, caplog):
  caplog.set_level(logging.WARNING)
  assert len(_read(glue_root, "QQP", "train")) == 2
  assert not [r for r in caplog.records if "malformed" in r.getMessage()]


def test_strict_tasks_do_not_skip(glue_root):
  for task in glue.TASKS.values():
    assert task.skip_malformed_rows == (task.name in ("QQP", "MNLI"))


# ------------------------------------------------------------------- XNLI

def test_xnli_keeps_only_the_language_rows(glue_root, monkeypatch):
  xnli = glue.get_task("XNLI")
  data_dir = os.path.join(glue_root, "XNLI")
  monkeypatch.setattr(xnli, "language", "de")
  dev = xnli.get_dev_examples(data_dir)
  assert [(e.text_a, e.label) for e in dev] == [
      ("und er hat gesagt, Mama ich bin daheim.", "entailment")]
  assert xnli.read_examples(data_dir, xnli.test[0]) == []
  train = xnli.get_train_examples(data_dir)
  assert xnli.train.file_name == os.path.join(
      "multinli", "multinli.train.de.tsv")
  assert [(e.text_a, e.label) for e in train] == [
      ("Konzeptionell hat die Rahmenabnahme zwei Dimensionen .",
       "contradiction")]
  monkeypatch.setattr(xnli, "language", "en")
  assert [e.text_b for e in xnli.get_dev_examples(data_dir)] == [
      "He didn't say a word."]


def test_xnli_maps_contradictory_to_contradiction(glue_root):
  xnli = glue.get_task("XNLI")
  labels = [e.label for e in xnli.get_train_examples(
      os.path.join(glue_root, "XNLI"))]
  assert labels == ["neutral", "contradiction", "entailment"]
  assert "contradictory" not in xnli.labels


def test_xnli_bad_label_in_another_language_is_ignored(glue_root):
  # Rows of other languages are dropped before their labels are looked at.
  rows = [list(r) for r in FILES["XNLI/xnli.dev.tsv"][1]]
  rows[0][1] = "bogus"  # the "en" row
  _rewrite(glue_root, "XNLI/xnli.dev.tsv", rows)
  assert len(_read(glue_root, "XNLI", "dev")) == 2


# ----------------------------------------------------- submission files

@pytest.mark.parametrize("task_name, predictions, expected", [
    ("CoLA", [1, 0, 1], ["1", "0", "1"]),
    ("SST-2", [0, 1], ["0", "1"]),
    ("MRPC", [1, 1, 0], ["1", "1", "0"]),
    ("QQP", [0, 1], ["0", "1"]),
    ("WNLI", [1, 0], ["1", "0"]),
    ("MNLI", [0, 1, 2, 1],
     ["contradiction", "entailment", "neutral", "entailment"]),
    ("QNLI", [0, 1], ["entailment", "not_entailment"]),
    ("RTE", [1, 0], ["not_entailment", "entailment"]),
    ("STS-B", [-0.5, 0.0, 2.71828, 3.0, 4.9996, 5.0004, 7.25],
     ["0.000", "0.000", "2.718", "3.000", "5.000", "5.000", "5.000"]),
    ("STS-B", [1.23456, 0.0004, 0.0005], ["1.235", "0.000", "0.001"]),
])
def test_write_submission_values(tmp_path, task_name, predictions, expected):
  task = glue.get_task(task_name)
  path = str(tmp_path / (task.name + ".tsv"))
  indices = [str(i + 10) for i in range(len(predictions))]
  glue.write_submission(path, task, indices, predictions)
  lines = _read_lines(path)
  assert lines[0] == "index\tprediction"
  assert lines[1:] == ["%s\t%s" % pair for pair in zip(indices, expected)]
  assert os.listdir(str(tmp_path)) == [task.name + ".tsv"]


def test_write_submission_takes_numpy_predictions(tmp_path):
  path = str(tmp_path / "MNLI-m.tsv")
  glue.write_submission(path, glue.get_task("MNLI"), ["0", "1", "2"],
                        np.array([2, 0, 1], dtype=np.int64))
  assert _read_lines(path)[1:] == ["0\tneutral", "1\tcontradiction",
                                   "2\tentailment"]
  path = str(tmp_path / "STS-B.tsv")
  glue.write_submission(path, glue.get_task("STS-B"), ["0", "1"],
                        np.array([3.14159, 6.5], dtype=np.float32))
  assert _read_lines(path)[1:] == ["0\t3.142", "1\t5.000"]


TEST_SPLITS = sorted(key for key in SPLIT_FILES
                     if glue.get_task(key[0]).has_submission and
                     _split(glue.get_task(key[0]), key[1]) in
                     glue.get_task(key[0]).test)


@pytest.mark.parametrize("task_name, split_name", TEST_SPLITS,
                         ids=["%s-%s" % key for key in TEST_SPLITS])
def test_submission_has_one_row_per_test_example(glue_root, tmp_path,
                                                 task_name, split_name):
  task = glue.get_task(task_name)
  examples = _read(glue_root, task_name, split_name)
  out_dir = tmp_path / "out"
  out_dir.mkdir()
  path = str(out_dir / (split_name + ".tsv"))
  glue.write_submission(path, task, [e.index for e in examples],
                        [0] * len(examples))
  lines = _read_lines(path)
  assert lines[0] == "index\tprediction"
  assert len(lines) == len(examples) + 1
  assert [line.split("\t")[0] for line in lines[1:]] == [
      e.index for e in examples]
  first = "0.000" if task.is_regression else task.labels[0]
  assert all(line.split("\t")[1] == first for line in lines[1:])
  assert os.listdir(str(out_dir)) == [split_name + ".tsv"]


def test_submission_split_names_are_the_server_file_names():
  names = [s.name for t in glue.TASKS.values() if t.has_submission
           for s in t.test]
  assert sorted(names) == sorted([
      "CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "AX",
      "QNLI", "RTE", "WNLI"])
  assert not glue.get_task("XNLI").has_submission


def test_write_submission_replaces_atomically(tmp_path):
  path = str(tmp_path / "RTE.tsv")
  with open(path, "w") as f:
    f.write("old content that is longer than the new one\n" * 10)
  glue.write_submission(path, glue.get_task("RTE"), ["0"], [0])
  assert _read_lines(path) == ["index\tprediction", "0\tentailment"]
  assert os.listdir(str(tmp_path)) == ["RTE.tsv"]


def test_write_submission_empty(tmp_path):
  path = str(tmp_path / "WNLI.tsv")
  glue.write_submission(path, glue.get_task("WNLI"), [], [])
  assert _read_lines(path) == ["index\tprediction"]
  assert os.listdir(str(tmp_path)) == ["WNLI.tsv"]


def test_only_a_task_with_a_score_range_clips_its_submission():
  """STS-B's [0, 5] belongs to STS-B: another regression task's scores
  are written as predicted."""

  class OpenScoreTask(glue.Task):
    name = "OpenScore"
    labels = None

  assert OpenScoreTask().submission_value(7.25) == "7.250"
  assert OpenScoreTask().submission_value(-1.5) == "-1.500"
  assert glue.get_task("STS-B").submission_value(7.25) == "5.000"


def write_nli_folder(folder, labels, with_dev=True):
  """An RTE/WNLI-layout folder (same headers): dev.tsv with these labels."""
  os.makedirs(folder)
  if with_dev:
    with open(os.path.join(folder, "dev.tsv"), "w") as f:
      f.write("index\tsentence1\tsentence2\tlabel\n")
      for (i, label) in enumerate(labels):
        f.write("%d\tA man sleeps.\tA person rests.\t%s\n" % (i, label))
  with open(os.path.join(folder, "test.tsv"), "w") as f:
    f.write("index\tsentence1\tsentence2\n0\tA man sleeps.\tNobody rests.\n")
  return folder


def test_a_test_file_of_another_task_with_the_same_header_is_refused(
    tmp_path):
  wnli = write_nli_folder(str(tmp_path / "WNLI"), ["0", "1"])
  rte = write_nli_folder(str(tmp_path / "RTE"),
                         ["entailment", "not_entailment"])
  glue.get_task("WNLI").check_labelled_data(wnli)
  glue.get_task("RTE").check_labelled_data(rte)
  with pytest.raises(glue.InputError) as e:
    glue.get_task("RTE").check_labelled_data(wnli)
  assert str(e.value).startswith("%s does not hold RTE's data: " % wnli)
  assert "label '0' is not one of entailment, not_entailment" in str(e.value)
  with pytest.raises(glue.InputError, match="does not hold WNLI's data"):
    glue.get_task("WNLI").check_labelled_data(rte)
  # A folder with the test file alone cannot be told apart: no refusal.
  alone = write_nli_folder(str(tmp_path / "alone"), [], with_dev=False)
  glue.get_task("RTE").check_labelled_data(alone)


def test_a_tab_inside_a_text_is_refused_not_cut(tmp_path):
  folder = str(tmp_path / "SST-2")
  os.makedirs(folder)
  with open(os.path.join(folder, "train.tsv"), "w") as f:
    f.write("sentence\tlabel\na fine film\t1\na fine\tfilm\t1\n")
  with pytest.raises(glue.InputError) as e:
    glue.get_task("SST-2").get_train_examples(folder)
  assert str(e.value).startswith(
      "%s:3: 3 tab-separated fields, but the header has 2" %
      os.path.join(folder, "train.tsv"))
