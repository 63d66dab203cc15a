// Word lists of the synthetic world, written for this project: syllables for
// made-up names, and plain English words for the linguistic relations, the
// relation ranges (colours, places, categories) and filler text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lpi::world {

inline const std::vector<std::string> kSyllables = {
    "ka",  "lo",  "ven", "tor", "mi",  "sa",  "dun", "rel", "bri", "zan",
    "qua", "mor", "fel", "nix", "pra", "dal", "ur",  "gos", "hel", "kri",
    "vo",  "tam", "ber", "lin", "sor", "wex", "yal", "jo",  "ceb", "ru"};

// Upper-case words, as the letter relations of the data set write them.
inline const std::vector<std::string> kLetterWords = {
    "APPLE",  "BRIDGE", "CANDLE",   "DESERT", "EAGLE",  "FOREST", "GARDEN", "HAMMER", "ISLAND",
    "JUNGLE", "KETTLE", "LADDER",   "MIRROR", "NEEDLE", "ORANGE", "PENCIL", "QUARTZ", "RIVER",
    "SADDLE", "TABLE",  "UMBRELLA", "VALLEY", "WINDOW", "YELLOW", "ZEBRA",  "BASKET", "CASTLE",
    "DRAGON", "ENGINE", "FLOWER",   "GUITAR", "HELMET", "INSECT", "JACKET", "KITTEN", "LEMON",
    "MARKET", "NAPKIN", "OCEAN",    "PILLOW", "RABBIT", "SILVER", "TICKET", "VIOLIN", "WALNUT",
    "BUTTON", "CARPET", "DOCTOR",   "FINGER", "GLOVE",  "HONEY",  "MONKEY", "PLANET", "ROCKET",
    "SPIDER", "TOMATO", "WAGON",    "BOTTLE", "CLOCK",  "SHADOW"};

inline const std::vector<std::pair<std::string, std::string>> kAntonymPairs = {
    {"hot", "cold"},       {"tall", "short"},   {"happy", "sad"},       {"fast", "slow"},
    {"early", "late"},     {"heavy", "light"},  {"rich", "poor"},       {"strong", "weak"},
    {"wet", "dry"},        {"loud", "quiet"},   {"open", "closed"},     {"young", "old"},
    {"empty", "full"},     {"soft", "hard"},    {"clean", "dirty"},     {"brave", "afraid"},
    {"wide", "narrow"},    {"sharp", "dull"},   {"cheap", "expensive"}, {"thick", "thin"},
    {"safe", "dangerous"}, {"rough", "smooth"}, {"deep", "shallow"},    {"sweet", "bitter"},
    {"near", "far"},       {"high", "low"},     {"true", "false"},      {"friendly", "hostile"}};

inline const std::vector<std::string> kColors = {"red",    "white",  "yellow", "green",
                                                 "orange", "purple", "pink",   "brown"};

inline const std::vector<std::string> kLocations = {"farm",    "hospital", "school",  "office",
                                                    "market",  "harbor",   "mine",    "studio",
                                                    "library", "bakery",   "factory", "theater"};

inline const std::vector<std::string> kSuperclasses = {"animal",     "tool",   "plant", "vehicle",
                                                       "instrument", "weapon", "bird",  "fish",
                                                       "furniture",  "insect"};

// Filler text: plain sentences about nothing in particular.
inline const std::vector<std::string> kFillerNouns = {
    "river",  "morning", "road",   "window", "teacher", "house",  "garden",
    "letter", "child",   "winter", "music",  "table",   "storm",  "village",
    "friend", "market",  "story",  "hill",   "boat",    "evening"};
inline const std::vector<std::string> kFillerAdjectives = {
    "quiet", "old", "bright", "small", "busy", "green", "long", "warm", "empty", "strange"};
inline const std::vector<std::string> kFillerVerbs = {"passed",  "waited",  "opened", "followed",
                                                      "watched", "crossed", "found",  "reached",
                                                      "left",    "painted"};
inline const std::vector<std::string> kFillerTemplates = {
    "The {a} {n} {v} the {n}.",         "A {a} {n} {v} near the {n}.",
    "In the {n}, the {n} {v} slowly.",  "Nobody {v} the {a} {n} that {n}.",
    "Yesterday the {n} {v} a {a} {n}.", "Later that {n}, someone {v} the {n} again."};

}  // namespace lpi::world
